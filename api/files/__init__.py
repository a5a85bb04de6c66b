"""Files through Tollgate: uploads owned by the tenant that made them (see `refs` for the check
that a message or batch only names the caller's files)."""

from api.files.refs import check_file_refs, file_ids_in, might_name_files

__all__ = ["check_file_refs", "file_ids_in", "might_name_files"]
