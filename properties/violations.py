"""The one exception every public checker of softeq.properties raises.

The checkers are meant to be called on a user's own code, often outside a test
runner and sometimes under `python -O`, which deletes every bare `assert`
statement. So they never rely on `assert`: each failed check raises
`PropertyViolation` explicitly, with a message that names the property, the
difference found and the tolerance it exceeded.

`PropertyViolation` subclasses `AssertionError`, so test runners (pytest,
hypothesis) treat it as an ordinary test failure and code written against the
earlier `AssertionError` contract keeps working.
"""

from __future__ import annotations

__all__ = ["PropertyViolation"]


class PropertyViolation(AssertionError):
    """A checked identity does not hold for the function under test.

    Raised by `check_soft_q_gradient_identity`, `assert_soft_q_gradient_identity`
    and `check_soft_n_step_targets`; the message names what failed and by how
    much, and hypothesis attaches the shrunk counterexample as a note
    (`error.__notes__`).
    """
