"""The numeric verifier, slowed down, so a test can kill `ttc verify` mid-way."""

import os
import time

from verifiers.numeric import NumericVerifier


class SlowNumericVerifier(NumericVerifier):
    name = "slow-numeric"
    batch_size = 2

    def verify(self, reference, completions):
        time.sleep(float(os.environ.get("TTC_FAKE_DELAY", "0.05")))
        return super().verify(reference, completions)


class LingeringVerifier(NumericVerifier):
    """The numeric verifier, which first starts what a real verifier may have running when ttc is killed: a
    math verification worker, and a code sandbox whose program sleeps ``$TTC_LINGER_SECONDS`` (unset: none)."""

    name = "lingering"
    batch_size = 2

    def verify(self, reference, completions):
        from verifiers.math_worker import SharedWorker
        from verifiers.sandbox import SandboxLimits, run_python

        seconds = float(os.environ.get("TTC_LINGER_SECONDS", "0"))
        if seconds:
            SharedWorker.for_limit(None).live()
            run_python(f"import time\ntime.sleep({seconds})", SandboxLimits(timeout_s=seconds + 10))
        return super().verify(reference, completions)
