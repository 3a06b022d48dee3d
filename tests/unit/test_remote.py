"""lessismore.remote's pure parts: which remote is used, what DVC's failure output means, and secret masking."""

from __future__ import annotations

import pytest

from lessismore.remote import ENV_URL, Remote, RemoteError, choose, diagnose, mask, parse_config_list

TEAM = ".dvc/config\tremote.team.url=s3://team-bucket/dvc\n.dvc/config\tremote.team.region=eu-west-1\n"
ENDPOINT = "http://127.0.0.1:9000"
SECRET = "moto-secret-key-never-printed-0123456789"
REMOTE = Remote("lessismore", "s3://my-bucket/store", ENDPOINT, ENV_URL)


def test_choose_prefers_the_env_then_the_default_then_the_only_remote():
    config = parse_config_list(TEAM + ".dvc/config\tcore.remote=team\n")
    assert choose(config, {ENV_URL: "s3://mine/x/", "AWS_ENDPOINT_URL": ENDPOINT}) == Remote(
        "lessismore", "s3://mine/x", ENDPOINT, ENV_URL
    )
    assert choose(config, {}) == Remote("team", "s3://team-bucket/dvc", None, ".dvc/config")
    assert choose(parse_config_list(TEAM), {}).name == "team"  # the only remote, even without core.remote
    two = parse_config_list(TEAM + ".dvc/config.local\tremote.mine.url=s3://mine/x\n")
    with pytest.raises(
        RemoteError, match=r"remotes \['mine', 'team'\] but none is the default.*LESSISMORE_REMOTE_URL"
    ):
        choose(two, {})
    with pytest.raises(RemoteError, match=r"no DVC remote is set up; set LESSISMORE_REMOTE_URL=s3://bucket/prefix"):
        choose({}, {})
    with pytest.raises(RemoteError, match=r"is not s3://bucket/prefix"):
        choose({}, {ENV_URL: "/mnt/store"})


UNREACHABLE = (
    "ERROR: failed to transfer '71d2f9d552c6e6e4920cd79ed7f76dda' - Could not connect to the endpoint URL: "
    '"http://127.0.0.1:9000/my-bucket/store/files/md5/71/d2f9d552c6e6e4920cd79ed7f76dda"\n'
    "ERROR: failed to push data to the cloud - 368 files failed to upload"
)


@pytest.mark.parametrize(
    ("op", "output", "expected"),
    [
        (
            "push",
            UNREACHABLE,
            f"push failed: the endpoint {ENDPOINT} cannot be reached or dropped the connection "
            "(s3://my-bucket/store) (368 files did not upload); every object pushed before that is kept on the remote",
        ),
        (
            "pull",
            "ERROR: unexpected error - Connection was closed before we received a valid response from endpoint",
            "everything downloaded before that is kept in .dvc/cache. When the server is reachable again, re-run "
            "`make pull`",
        ),
        (
            "push",
            "ERROR: unexpected error - The specified bucket does not exist: An error occurred (NoSuchBucket)",
            f"the bucket 'my-bucket' does not exist on the endpoint {ENDPOINT}; "
            "create it or fix LESSISMORE_REMOTE_URL",
        ),
        (
            "push",
            "ERROR: unexpected error - Unable to locate credentials",
            f"no AWS credentials found for s3://my-bucket/store on the endpoint {ENDPOINT}; set AWS_ACCESS_KEY_ID",
        ),
        (
            "pull",
            "ERROR: unexpected error - An error occurred (InvalidAccessKeyId) when calling the ListObjectsV2",
            "access denied to s3://my-bucket/store on the endpoint http://127.0.0.1:9000; check the credentials in "
            "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY",
        ),
        (
            "pull",
            "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\ndata\nIs your "
            "cache up to date?",
            "lacks outputs that dvc.lock names; run `make push` where the pipeline last ran",
        ),
        (
            "push",
            "ERROR: something new",
            "dvc push to s3://my-bucket/store on the endpoint http://127.0.0.1:9000 failed:\nERROR: something new",
        ),
    ],
    ids=["unreachable", "dropped", "no-bucket", "no-credentials", "denied", "missing-on-remote", "other"],
)
def test_diagnose_names_the_endpoint_and_the_fix(op, output, expected):
    assert expected in diagnose(op, output, REMOTE)


def test_mask_hides_secrets_wherever_they_appear():
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": "tok-123456", "AWS_ACCESS_KEY_ID": "AKIA"}
    assert mask(f"secret={SECRET} token=tok-123456 id=AKIA", env) == "secret=*** token=*** id=AKIA"
