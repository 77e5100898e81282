"""The CyberTipline: documents (xml), the HTTP client (client), the resumable sending (submit)."""
