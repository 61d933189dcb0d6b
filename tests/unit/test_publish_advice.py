"""What a container publish that stopped part-way tells its person to run next (PublishProgress.how_to_go_on),
read as that person: each case names the next command, or says that none is needed."""

from __future__ import annotations

import pytest

from rollway.image import image_references
from rollway.publish import Known, PublishProgress, VersionImage, release_refusal

ECR = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
REPO = "webordinary/edit-container"
REFS = image_references(ECR, REPO, "2.0.0", push_latest=True)
IMAGE_ID = "sha256:" + "c" * 64
DIGEST = "sha256:" + "d" * 64


def test_a_push_only_run_whose_latest_was_not_pushed_is_given_the_commands_that_push_it():
    # "push it by hand if you need it": which image, from where? The local latest tag is the
    # daemon's, shared with other runs: the built image's id is the one to tag.
    progress = PublishProgress(refs=REFS, register=False, image_id=IMAGE_ID, digests={REFS.versioned: DIGEST})
    advice = progress.how_to_go_on()
    assert f"docker tag {IMAGE_ID} {REFS.latest}, then docker push {REFS.latest}" in advice, advice
    assert "push it by hand" in advice and "register_existing" not in advice


def test_a_push_only_run_with_everything_pushed_is_told_nothing_is_left_to_run():
    # Pushed, and a later check failed (another run's image under the version, or a family that
    # changed so that no revision is to be registered): "a plain re-run is refused" named no way
    # on, and read as if one were needed.
    progress = PublishProgress(refs=REFS, register=False, image_id=IMAGE_ID,
                               digests={REFS.versioned: DIGEST, REFS.latest: DIGEST})
    advice = progress.how_to_go_on()
    assert "nothing is left to run for this version" in advice, advice
    assert "a new build needs a new version" in advice, advice


def test_a_run_that_registers_is_told_to_run_again_with_register_existing():
    progress = PublishProgress(refs=REFS, image_id=IMAGE_ID, digests={REFS.versioned: DIGEST, REFS.latest: DIGEST})
    assert progress.how_to_go_on() == (
        "the version is in the registry, so a plain re-run is refused: run again with register_existing=True to "
        "register its task definition without rebuilding")


def test_a_run_that_could_not_tell_whose_image_is_under_the_version_registers_it_only_once_told():
    # The push's answer was lost, the registry holds an image for the version, and its manifest could
    # not be read: "run again with register_existing=True" alone registered that image, and moved
    # latest to it, whoever built it.
    progress = PublishProgress(refs=REFS, image_id=IMAGE_ID, held={REFS.versioned: DIGEST},
                               version_image=VersionImage(Known.UNTOLD, DIGEST))
    assert progress.how_to_go_on() == (
        f"first tell whose image {DIGEST} (what the registry holds for {REFS.versioned}) is: if its manifest names "
        f"{IMAGE_ID} as its config, it is this run's build, and the version is in the registry, so a plain re-run is "
        "refused: run again with register_existing=True to register its task definition without rebuilding; latest "
        "was not moved: register_existing moves it (push_latest=False leaves it); if it names another, it is another "
        "run's image (that run registers it): nothing is left to run for this build, and a new build needs a new "
        "version")


def test_a_run_stopped_before_its_version_was_pushed_can_be_run_again_as_it_was():
    progress = PublishProgress(refs=REFS, register=False, image_id=IMAGE_ID)
    assert progress.how_to_go_on() == "re-running with the same version is safe (the version is not in the registry)"


def test_a_run_whose_failed_push_left_the_registry_unread_is_not_told_the_version_is_not_there():
    # The push of the version failed and the registry could not be read after it: the push may have
    # got that far (or another run pushed the version), so "the version is not in the registry" and
    # "nothing was pushed" were guesses. The re-run is safe all the same: it asks the registry first.
    progress = PublishProgress(refs=REFS, image_id=IMAGE_ID, version_image=VersionImage(Known.UNREAD))
    state, advice = progress.state(), progress.how_to_go_on()
    assert f"whether the registry holds {REFS.versioned} is not known" in state, state
    assert "nothing was pushed" not in state, state
    assert "not in the registry" not in advice, advice
    assert advice.startswith("re-running with the same version is safe: it asks the registry for the version "
                             "before building"), advice


def test_a_register_existing_run_that_left_latest_on_a_newer_release_is_not_told_it_moves_latest():
    # register_existing left latest on a release pushed after the version, then its registration
    # failed: "latest was not moved: register_existing moves it" told the person the way on moves
    # latest back to an older release, which it does not (it leaves it again).
    newer = "sha256:" + "e" * 64
    progress = PublishProgress(refs=REFS, digests={REFS.versioned: DIGEST}, latest_left=newer)
    assert f"{REFS.latest} was left on {newer}, a newer release's" in progress.state(), progress.state()
    assert f"{REFS.latest} was not moved" not in progress.state(), progress.state()
    assert progress.how_to_go_on() == (
        "the version is in the registry, so a plain re-run is refused: run again with register_existing=True to "
        "register its task definition without rebuilding")


def test_an_interrupted_push_only_run_without_latest_is_not_told_to_push_latest():
    # push_latest=False: the run had no latest to push, and "push latest by hand" sent its
    # person to move a tag the release was meant to leave alone.
    refs = image_references(ECR, REPO, "2.0.0", push_latest=False)
    advice = PublishProgress(refs=refs, register=False, image_id=IMAGE_ID).how_to_go_on_interrupted()
    assert "latest" not in advice, advice
    assert advice.startswith("run again: it asks the registry first"), advice
    with_latest = PublishProgress(refs=REFS, register=False, image_id=IMAGE_ID).how_to_go_on_interrupted()
    assert "push latest by hand if it does not name the version" in with_latest, with_latest


def test_a_run_that_left_latest_alone_is_told_to_register_the_version_leaving_latest_alone_too():
    # push_latest=False (a release staged without becoming latest) stopped before registering:
    # "run again with register_existing=True" alone moved latest to it, as register_existing
    # does by default, against what the run was asked.
    refs = image_references(ECR, REPO, "2.0.0", push_latest=False)
    stopped = PublishProgress(refs=refs, image_id=IMAGE_ID, digests={refs.versioned: DIGEST})
    assert "register_existing=True and push_latest=False" in stopped.how_to_go_on(), stopped.how_to_go_on()
    interrupted = PublishProgress(refs=refs, image_id=IMAGE_ID).how_to_go_on_interrupted()
    assert "register_existing=True and push_latest=False" in interrupted, interrupted
    # A run that moved latest keeps register_existing's default, which moves it too.
    moved = PublishProgress(refs=REFS, image_id=IMAGE_ID, digests={REFS.versioned: DIGEST, REFS.latest: DIGEST})
    assert "push_latest" not in moved.how_to_go_on(), moved.how_to_go_on()


def test_a_version_already_pushed_is_refused_with_the_way_on_that_keeps_latest_where_the_run_asked():
    refs = image_references(ECR, REPO, "2.0.0", push_latest=False)
    why = release_refusal(refs, version_digest=DIGEST, latest_immutable=False, register_existing=False)
    assert why is not None and "register_existing=True and push_latest=False" in why, why
    why = release_refusal(REFS, version_digest=DIGEST, latest_immutable=False, register_existing=False)
    assert why is not None and "register_existing=True" in why and "push_latest" not in why, why


def test_an_interrupted_register_existing_run_is_told_to_run_again_as_it_was():
    # It builds nothing: "run again: it asks the registry first, and a version that is there is
    # refused" read as a plain run (which needs a context_dir, and is refused), not as the
    # register_existing run it was, which finds a revision it registered before it was stopped.
    progress = PublishProgress(refs=REFS, digests={REFS.versioned: DIGEST}, existing=True)
    advice = progress.how_to_go_on_interrupted()
    assert "refused" not in advice, advice
    assert advice.startswith("run it again as it was (register_existing=True)"), advice


def test_latest_another_run_tagged_is_said_with_what_a_re_run_does_on_ecr_and_on_another_registry():
    """Only ECR says when an image was pushed: on another registry the re-run moves latest back
    whatever it names, and "unless ECR says" promised a check that is not made there."""
    other = "sha256:" + "b" * 64
    for registry, checked in ((ECR, True), ("127.0.0.1:5000", False)):
        refs = image_references(registry, REPO, "2.0.0", push_latest=True)
        progress = PublishProgress(refs=refs, existing=True, digests={refs.versioned: DIGEST},
                                   latest_taken=(DIGEST, other))
        assert f"{refs.latest} names {other} in the registry now, tagged by another run while this one moved it to " \
               f"{DIGEST}" in progress.state()
        advice = progress.how_to_go_on()
        assert "register_existing=True" in advice and "the re-run reads it again" in advice, advice
        assert ("unless ECR says" in advice) is checked, advice


def test_a_login_is_renewed_when_it_would_expire_before_a_push_could_end():
    import datetime as dt


    from rollway.publish import login_renewal

    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    half_hour = dt.timedelta(minutes=30)

    def renewal(left: dt.timedelta, bound: dt.timedelta = half_hour, issued_ago: dt.timedelta | None = None):
        return login_renewal(now + left, now=now, push_bound=bound,
                             issued=None if issued_ago is None else now - issued_ago)

    assert renewal(dt.timedelta(hours=11)) is None
    assert renewal(half_hour) is None  # lasts exactly as long as a push may take
    assert renewal(dt.timedelta(minutes=20)) == ("the login expires in 20 min, sooner than a push may take "
                                                 "(30 min, docker_timeout_seconds)")
    assert renewal(-dt.timedelta(hours=1)) == "the login expired 1 h ago"
    # A push bound shorter than the margin: still renewed within ten minutes of expiry.
    assert (renewal(dt.timedelta(minutes=5), bound=dt.timedelta(minutes=1))
            == "the login expires in 5 min, within 10 min")
    # A push may take longer than any login lasts (ECR's 12 hours): one issued moments ago is
    # not asked for again before every push, it would expire no later.
    assert renewal(dt.timedelta(hours=12), bound=dt.timedelta(hours=24), issued_ago=dt.timedelta(seconds=5)) is None
    assert renewal(dt.timedelta(hours=10), bound=dt.timedelta(hours=24), issued_ago=dt.timedelta(hours=2)) is not None
    # A login with no expiry (another registry's) is never asked for again; a naive one is UTC.
    assert login_renewal(None, now=now, push_bound=half_hour) is None
    assert login_renewal((now + dt.timedelta(minutes=5)).replace(tzinfo=None), now=now, push_bound=half_hour)
    # One ECR issued moments ago that expires within minutes all the same is asked for again.
    assert renewal(dt.timedelta(minutes=5), issued_ago=dt.timedelta(seconds=1)) is not None


def test_a_login_renewal_says_its_spans_as_every_duration_is_said():
    """The publish flow's steps said a span in words of their own ("24 h", the seconds dropped),
    the run's log and its forms in others ("1 d"): one way now (``rollway.bounds.duration_said``),
    in whole seconds, so a login a few seconds short of the margin never reads as "10 min, within 10 min"."""
    import datetime as dt

    from rollway.bounds import duration_said
    from rollway.publish import login_renewal

    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    assert (login_renewal(now + dt.timedelta(hours=11, minutes=39, seconds=48.6), now=now, push_bound=dt.timedelta(days=1))
            == "the login expires in 11 h 39 min 48 s, sooner than a push may take (1 d, docker_timeout_seconds)")
    assert (login_renewal(now + dt.timedelta(minutes=9, seconds=59.7), now=now, push_bound=dt.timedelta(minutes=5))
            == "the login expires in 9 min 59 s, within 10 min")
    assert [duration_said(s) for s in (0.5, 45, 60, 5400, 90061)] == ["0.5 s", "45 s", "1 min", "1 h 30 min",
                                                                      "1 d 1 h 1 min 1 s"]


def test_a_registered_release_whose_latest_another_run_took_is_not_told_the_re_run_moves_latest():
    """latest moves once the release is registered: another run that tagged latest while this
    one moved it left a registered release told "run again with register_existing=True, which
    moves latest to it", though the re-run leaves latest on an image ECR says was pushed after
    the version. It is told what the re-run does, as a run stopped before registering was."""
    other, registered = "sha256:" + "b" * 64, "arn:aws:ecs:us-west-2:123456789012:task-definition/edit:8"
    for registry, checked in ((ECR, True), ("127.0.0.1:5000", False)):
        refs = image_references(registry, REPO, "2.0.0", push_latest=True)
        progress = PublishProgress(refs=refs, image_id=IMAGE_ID, digests={refs.versioned: DIGEST},
                                   task_definition=registered, latest_taken=(DIGEST, other))
        advice = progress.how_to_go_on()
        assert f"the release is registered ({registered})" in advice, advice
        assert "which moves latest to it" not in advice, advice
        assert "register_existing=True" in advice and "the re-run reads latest again and puts it back on the version" in advice, advice
        assert ("unless ECR says" in advice) is checked, advice
        assert f"registers no second revision while {registered} is the family's latest ACTIVE one" in advice, advice


def test_a_run_stopped_before_latest_moved_says_latest_was_not_moved_not_that_it_was_not_pushed():
    """latest is never pushed now (it is moved by the registry's API once the release is
    registered): "latest was not pushed" read as if a push of latest were what was missing."""
    progress = PublishProgress(refs=REFS, image_id=IMAGE_ID, digests={REFS.versioned: DIGEST})
    assert f"{REFS.latest} was not moved to {REFS.versioned}" in progress.state(), progress.state()
    assert "was not pushed" not in progress.state(), progress.state()


def test_a_run_interrupted_before_its_build_was_told_in_the_registry_registers_only_once_told():
    # Interrupted during (or before) the push: the image under the version may be another run's,
    # and "register_existing=True then registers it" registered it whoever built it.
    for pushed in ({}, {REFS.versioned: DIGEST}):
        advice = PublishProgress(refs=REFS, image_id=IMAGE_ID, digests=dict(pushed)).how_to_go_on_interrupted()
        assert "then registers it" not in advice, advice
        assert (f"first tell whose image the registry holds for {REFS.versioned}: if its manifest names {IMAGE_ID} as "
                "its config, it is this run's build, and register_existing=True registers it without rebuilding; if "
                "it names another, it is another run's image (that run registers it)") in advice, advice
    # Interrupted while building: nothing of this run's can be under the version.
    advice = PublishProgress(refs=REFS).how_to_go_on_interrupted()
    assert "register_existing" not in advice and "another run's (that run registers it)" in advice, advice
    # Once the push was told to be this run's build, register_existing registers it.
    told = PublishProgress(refs=REFS, image_id=IMAGE_ID, digests={REFS.versioned: DIGEST},
                           version_image=VersionImage(Known.OURS, DIGEST))
    assert told.how_to_go_on_interrupted().endswith(
        "(register_existing=True then registers it without rebuilding)"), told.how_to_go_on_interrupted()


def test_a_run_interrupted_after_registering_is_not_told_the_re_run_registers_the_version():
    # Stopped while moving latest, once the revision was registered: "register_existing=True then
    # registers it" promised a registration the re-run does not make; it finds the revision.
    revision = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit:7"
    for refs in (REFS, image_references(ECR, REPO, "2.0.0", push_latest=False)):
        progress = PublishProgress(refs=refs, image_id=IMAGE_ID, digests={refs.versioned: DIGEST},
                                   task_definition=revision)
        advice = progress.how_to_go_on_interrupted()
        assert "then registers it" not in advice, advice
        assert f"finds {revision}" in advice and "registers no second revision" in advice, advice
        assert ("moves latest to it" in advice) == (refs.latest is not None), advice


def test_what_is_known_of_the_version_image_is_one_fact_with_a_digest_only_where_one_was_read():
    # Five flags could say at once that the registry was not read and that it held another run's
    # digest: the record now holds one fact, and a digest goes with the facts that read one.
    for known in (Known.UNTOLD, Known.OURS, Known.THEIRS):
        assert VersionImage(known, DIGEST).digest == DIGEST
        with pytest.raises(ValueError, match="its digest is needed"):
            VersionImage(known)
    for known in (Known.UNASKED, Known.UNREAD):
        with pytest.raises(ValueError, match="no digest was read"):
            VersionImage(known, DIGEST)


ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/edit:12"


def test_a_released_version_ecr_holds_archived_is_said_archived_with_the_way_to_restore_it():
    # "it is released ... nothing is left to run" of an image a lifecycle rule archived: the
    # revision that pins it starts no new task (a scale-out, a replaced task cannot pull it).
    why = release_refusal(REFS, version_digest=DIGEST, latest_immutable=False, register_existing=False,
                          version_status="ARCHIVED", released_as=ARN)
    assert why is not None and "is ARCHIVED in ECR" in why, why
    assert "no new task" in why and "UpdateImageStorageClass" in why, why
    assert "nothing is left to run" not in why, why
    # Not released: register_existing, the way on it named, is refused for an archived image.
    why = release_refusal(REFS, version_digest=DIGEST, latest_immutable=False, register_existing=False,
                          version_status="ARCHIVED")
    assert why is not None and "is ARCHIVED in ECR" in why and "UpdateImageStorageClass" in why, why
    assert why.index("UpdateImageStorageClass") < why.index("register_existing=True"), why


def test_under_immutable_tags_a_version_already_pushed_is_given_a_way_on_that_leaves_latest():
    # register_existing=True moves latest, which immutable tags refuse: the way on named was refused.
    why = release_refusal(REFS, version_digest=DIGEST, latest_immutable=True, register_existing=False)
    assert why is not None and "register_existing=True and push_latest=False" in why, why
    why = release_refusal(REFS, version_digest=DIGEST, latest_immutable=True, register_existing=False,
                          released_as=ARN)
    assert why is not None and "nothing is left to run" in why, why
    assert "register_existing" not in why and "immutable" in why, why
