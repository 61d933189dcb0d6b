"""ApprovalAnswer as plain data: a comment is bounded, since it becomes a rollback's reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.approvals import COMMENT_LIMIT, ApprovalAnswer


def test_a_comment_up_to_the_limit_is_kept_and_a_longer_one_refused_by_name():
    kept = ApprovalAnswer(action="reject", approver="alice", comment="é" * COMMENT_LIMIT)
    assert len(kept.comment) == COMMENT_LIMIT == 2_000
    with pytest.raises(ValidationError, match=r"comment\n.*at most 2000 characters"):
        ApprovalAnswer(action="reject", approver="alice", comment="x" * (COMMENT_LIMIT + 1))
    assert ApprovalAnswer(action="approve", approver="alice").comment == ""
