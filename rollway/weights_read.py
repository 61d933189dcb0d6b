"""What a weight write read of the load balancer's rule before it wrote: the weights it moved the
traffic from.

``TrafficRouter.set_weights`` reads the rule before its ModifyRule anyway (the rule's other actions
are written back as they are), and gives back the weights it found there, so that a rollback
records what it moved the traffic from without a read of its own, one call fewer before users are
back on stable. The move may be sent again, and only the first read is the traffic from before the
move: a rollback's router (``TrafficRouter.dropping_others``) records each send's read in the move's
own ``FirstRead`` as soon as it is made, before its write, so that a send that fails after it (a
lost answer, a throttle) leaves it there. Beside the send's error, not on it: botocore's errors
pickle without anything set on them, and Prefect may store a task's failure and load it again.
"""

from __future__ import annotations

from rollway.model import Weights


class FirstRead:
    """The first read of the rule made by one move of the traffic, whose write may be sent more than
    once: what the rule held before any of its writes.

    A later send's read may come after a write whose answer was lost and that landed all the same,
    and find the move's own weights: only the first read says what users had before the move. A
    send that failed before its read (DescribeRules throttled) wrote nothing and recorded nothing,
    so the next send's read is still from before the move.

    Attributes:
        made: a write's read of the rule answered.
        weights: what it found; None when not made, or when the rule forwarded to no split of the
            stable and canary groups alone (a third group, weight 0 on both), which
            ``TrafficRouter.get_weights`` refuses and a rollback's move is made over all the same.
        dropped: what a rollback's move dropped from the rule (a target group other than stable and
            canary, and its weight, in the words a rollout's shift refuses the rule with); None: nothing.
        replaced: that a rollback's move went over another rule than the one its run had looked up,
            gone since (a stack update's, under a new ARN), naming both; None: it did not.
    """

    def __init__(self) -> None:
        self.made = False
        self.weights: Weights | None = None
        self.dropped: str | None = None
        self.replaced: str | None = None

    def read(self, weights: Weights | None) -> None:
        """Take what a send's read of the rule found, told before its write (``AlbRouter.dropping_others``):
        the first send's, as a later one's read may follow a write that landed."""
        self._take(weights)

    def dropping(self, said: str) -> None:
        """Take what a send is about to drop from the rule (``AlbRouter.dropping_others``): the first
        send's, as a later one's read may follow a write that landed and dropped it already."""
        if self.dropped is None:
            self.dropped = said

    def moving_over(self, said: str) -> None:
        """Take that a send found the rule gone and moves the traffic over the one it found again
        (``AlbRouter.dropping_others``): the first send's, as the sends after it use the rule found."""
        if self.replaced is None:
            self.replaced = said

    def answered(self, weights: Weights | None) -> Weights | None:
        """Take what a write that succeeded read (``set_weights``'s answer; a router that told its read
        before the write told this one already); return it."""
        self._take(weights)
        return weights

    def _take(self, weights: Weights | None) -> None:
        if not self.made:
            self.made, self.weights = True, weights
