"""Settings shared by the whole test session."""

import os

from hypothesis import settings

# Under CI (CI=true) the property tests run a fixed, reproducible set of examples, so a red run
# can be replayed from its log; local runs keep drawing new examples to find new bugs.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
