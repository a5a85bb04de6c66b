"""`GET /v1/models`: the models the caller's plan allows and the price book prices."""
