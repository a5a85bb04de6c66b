"""Who is calling, as typed dependencies shared by every feature: a tenant's API key
(`tenant.py`: `Caller`) and the admin token (`admin.py`: `require_admin`)."""
