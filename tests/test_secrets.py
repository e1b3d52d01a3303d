"""journey.secrets: encryption at rest, key rotation and the errors an operator sees."""

from __future__ import annotations

import logging
import pickle

import pytest
from cryptography.fernet import Fernet

from journey.errors import JourneyError
from journey.secrets import MAKE_KEY_COMMAND, SECRET_KEY_ENV, Cipher, SecretKeyChanged

TOKEN = "xoxb-1234-5678-abcdefghijklmnop"


def test_round_trip_and_ciphertext_hides_the_plaintext():
    cipher = Cipher([Cipher.generate_key()])
    sealed = cipher.encrypt(TOKEN)
    assert isinstance(sealed, bytes)
    assert TOKEN.encode() not in sealed
    assert cipher.decrypt(sealed) == TOKEN
    # Fernet is randomised: the same secret never encrypts the same way twice.
    assert cipher.encrypt(TOKEN) != sealed


def test_unicode_round_trip():
    cipher = Cipher([Cipher.generate_key()])
    assert cipher.decrypt(cipher.encrypt("pässwörd ✓")) == "pässwörd ✓"


def test_from_env_reads_comma_separated_keys_and_first_one_encrypts():
    old, new = Cipher.generate_key(), Cipher.generate_key()
    sealed_with_old = Cipher([old]).encrypt(TOKEN)

    cipher = Cipher.from_env({SECRET_KEY_ENV: f" {new} , {old} "})
    assert cipher.decrypt(sealed_with_old) == TOKEN
    # New ciphertext opens with the new key alone, so the old one can be dropped later.
    assert Cipher([new]).decrypt(cipher.encrypt(TOKEN)) == TOKEN
    rotated = cipher.rotate(sealed_with_old)
    assert Cipher([new]).decrypt(rotated) == TOKEN


def test_missing_key_says_how_to_make_one():
    with pytest.raises(JourneyError) as err:
        Cipher.from_env({})
    message = str(err.value)
    assert SECRET_KEY_ENV in message
    assert MAKE_KEY_COMMAND in message
    with pytest.raises(JourneyError):
        Cipher.from_env({SECRET_KEY_ENV: " , "})


def test_the_make_key_command_makes_a_usable_key():
    # The command in the message is the one we test, not a paraphrase of it.
    assert MAKE_KEY_COMMAND == "python3 run.py journey secret-key"  # tests/test_first_hour.py runs it
    Cipher([Fernet.generate_key().decode()])


def test_malformed_key_is_a_clear_error_that_does_not_echo_the_key():
    bad = "not-a-real-key-but-maybe-a-secret"
    with pytest.raises(JourneyError) as err:
        Cipher.from_env({SECRET_KEY_ENV: bad})
    assert "malformed" in str(err.value)
    assert MAKE_KEY_COMMAND in str(err.value)
    assert bad not in str(err.value)
    assert err.value.__cause__ is None

    with pytest.raises(JourneyError, match="key 2 of 2"):
        Cipher.from_env({SECRET_KEY_ENV: f"{Cipher.generate_key()},{bad}"})


def test_wrong_key_is_a_clear_error():
    sealed = Cipher([Cipher.generate_key()]).encrypt(TOKEN)
    other = Cipher([Cipher.generate_key()])
    with pytest.raises(SecretKeyChanged, match="the secret key changed") as err:
        other.decrypt(sealed)
    assert isinstance(err.value, JourneyError)
    assert f"{SECRET_KEY_ENV}=new,old" in str(err.value)
    with pytest.raises(SecretKeyChanged):
        other.rotate(sealed)
    with pytest.raises(SecretKeyChanged):
        other.decrypt(b"garbage")


def test_ephemeral_key_only_when_asked_and_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="journey.secrets"):
        cipher = Cipher.from_env({}, allow_ephemeral=True)
    assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN
    assert "throw-away key" in caplog.text
    # A second ephemeral cipher cannot read the first one's secrets.
    with pytest.raises(SecretKeyChanged):
        Cipher.from_env({}, allow_ephemeral=True).decrypt(cipher.encrypt(TOKEN))


def test_from_env_defaults_to_the_process_environment(monkeypatch):
    key = Cipher.generate_key()
    monkeypatch.setenv(SECRET_KEY_ENV, key)
    assert Cipher.from_env().decrypt(Cipher([key]).encrypt(TOKEN)) == TOKEN
    monkeypatch.delenv(SECRET_KEY_ENV)
    with pytest.raises(JourneyError):
        Cipher.from_env()


def test_repr_and_pickle_do_not_leak_the_key():
    key = Cipher.generate_key()
    cipher = Cipher.from_env({SECRET_KEY_ENV: f"{key},{Cipher.generate_key()}"})
    assert repr(cipher) == "Cipher(keys=2)"
    assert key not in repr(cipher) and key not in str(cipher)
    with pytest.raises(TypeError):
        pickle.dumps(cipher)
