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
