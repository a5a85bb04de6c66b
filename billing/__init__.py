"""Everything Razorpay: subscriptions, webhooks, the reconciling sync and overage billing."""
