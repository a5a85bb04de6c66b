"""The HTTP edge shared by every route: size and time limits, strict JSON bodies, the server
protocol, failed-auth throttling and the OpenAPI document."""
