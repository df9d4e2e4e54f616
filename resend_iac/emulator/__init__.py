"""A faithful local Resend API (contacts, properties, segments, topics, imports).

Imports nothing else of resend_iac. ``create_app`` builds the ASGI app; ``server.serve``
runs it under uvicorn.
"""

from resend_iac.emulator.app import EmulatorApp, create_app

__all__ = ["EmulatorApp", "create_app"]
