"""resend-iac: contacts as code for Resend."""

__version__ = "0.1.0"
