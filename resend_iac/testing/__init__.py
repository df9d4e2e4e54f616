"""The emulator in your own tests: ``resend_iac.testing``.

With resend-iac installed, pytest loads the plugin (``resend_iac.testing.plugin``, a
``pytest11`` entry point) and a test asks for the ``resend_emulator`` fixture::

    @pytest.mark.resend_seed("team.yaml")          # relative to the test file
    def test_signup(resend_emulator):
        signup("ada@example.com")                  # your code, with the official SDK
        assert resend_emulator.request_counts()["POST /contacts"] == 1
        resend_emulator.assert_matches("expected.yaml")

See docs/testing.md. Outside pytest, :class:`EmulatorThread` serves an emulator app on a free
port in a thread of this process.
"""

from resend_iac.testing.emulator import EmulatorThread, RecordedRequest, ResendEmulator

__all__ = ["EmulatorThread", "RecordedRequest", "ResendEmulator"]
