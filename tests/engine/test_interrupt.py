"""engine.interrupt: the flag, the handlers it installs and restores, the second signal."""

from __future__ import annotations

import os
import signal

import pytest

from spIsoNet.engine import interrupt


def test_a_signal_sets_the_flag_and_check_raises_there():
    before = signal.getsignal(signal.SIGTERM)
    with interrupt.handle_signals(grace=30.0):
        interrupt.check()  # nothing requested yet
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupt.requested() == signal.SIGTERM
        with pytest.raises(interrupt.Interrupted) as info:
            interrupt.check()
        assert info.value.exit_code == 143 and str(info.value) == "SIGTERM"
        with pytest.raises(interrupt.Interrupted):  # a second signal raises at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before
    assert interrupt.requested() is None


def test_request_and_clear_without_signals():
    interrupt.request(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    finally:
        interrupt.clear()
    interrupt.check()
