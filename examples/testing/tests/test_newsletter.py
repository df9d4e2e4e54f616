"""Tests of newsletter.py against the Resend emulator: the ``resend_emulator`` fixture comes
with resend-iac (``pip install resend-iac``), no conftest needed."""

import pytest
import resend
from newsletter import sign_up, subscribers


@pytest.mark.resend_seed("../team.yaml")  # relative to this file
def test_seeded_team_is_seen_through_the_sdk(resend_emulator):
    emails = sorted(c["email"] for c in resend.Contacts.list()["data"])
    assert emails == ["ada@example.com", "grace@example.com", "linus@example.com"]
    assert subscribers() == ["ada@example.com"]  # grace unsubscribed, linus not a member


def test_the_next_test_starts_from_an_empty_team(resend_emulator):
    assert resend.Contacts.list()["data"] == []
    assert subscribers() == []  # (and this created the segment)


@pytest.mark.resend_seed("../team.yaml")
def test_sign_up_of_an_existing_contact_never_creates_it_again(resend_emulator):
    sign_up("linus@example.com", first_name="Linus")
    assert subscribers() == ["ada@example.com", "linus@example.com"]
    assert resend_emulator.requests("POST /contacts") == []  # found by email, not re-created
    resend_emulator.assert_matches("../expected-after-signup.yaml")


def test_sign_up_of_a_new_person(resend_emulator):
    contact_id = sign_up("new@example.com", first_name="New")
    assert resend.Contacts.get(id=contact_id)["first_name"] == "New"
    counts = resend_emulator.request_counts()
    assert counts["POST /contacts"] == 1 and counts["POST /segments"] == 1
    # what was sent: no `unsubscribed` field, so the person's choice is never overwritten
    assert resend_emulator.requests("POST /contacts")[0].json() == {
        "email": "new@example.com",
        "first_name": "New",
    }
    team = resend_emulator.state()
    assert team.contacts["new@example.com"].segments == {"Newsletter"}


@pytest.mark.resend_emulator(rate_limit=2)
def test_sign_up_under_the_real_rate_limit_surfaces_429(resend_emulator):
    # The SDK doesn't retry: the application sees Resend's 429 at 2 requests/s.
    with pytest.raises(resend.exceptions.RateLimitError):
        for i in range(10):
            sign_up(f"person{i}@example.com")
    assert 429 in [r.status for r in resend_emulator.requests()]


def test_without_the_fixture_nothing_changes():
    assert not resend.api_url.startswith("http://127.0.0.1")  # back to what it was
