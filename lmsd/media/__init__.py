"""Media (HLS) helpers shared by the API and the gateway: signed URLs for ``/media/*``."""
