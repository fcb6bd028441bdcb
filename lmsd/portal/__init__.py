"""The campus portal (server pages now; the full web app and PWA come with issue 7)."""
