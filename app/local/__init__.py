"""What runs on a developer's machine rather than the server: `tokentrail import`, `env`, `demo` and the demo's seed."""
