"""Which code a run records: the last commit of the code that trains, not of results or tables committed beside it."""

import subprocess

from recbole_mdsrec.provenance import checkout_version


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def commit(repo, path, text, message) -> str:
    file = repo / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    git(repo, "add", path)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")[:12]


def test_results_commits_keep_the_code_version_and_code_commits_change_it(tmp_path):
    git(tmp_path, "init", "-q")
    code = commit(tmp_path, "setup.cfg", "[metadata]\n", "code")
    assert checkout_version(tmp_path) == code
    commit(tmp_path, "results/ml-100k-mm/runs.csv", "model\n", "results")  # the grid's rows, committed as they grow
    assert checkout_version(tmp_path) == code
    commit(tmp_path, "recbole_mdsrec/tables/report.py", "y = 1\n", "report change")  # reads runs, trains none
    assert checkout_version(tmp_path) == code
    (tmp_path / "recbole_mdsrec/tables/report.py").write_text("y = 2\n")
    assert checkout_version(tmp_path) == code
    changed = commit(tmp_path, "recbole_mdsrec/models/x.py", "x = 1\n", "model change")
    assert changed != code and checkout_version(tmp_path) == changed
    (tmp_path / "recbole_mdsrec/models/x.py").write_text("x = 2\n")  # edited, not committed
    assert checkout_version(tmp_path) == changed + "+changes"
    (tmp_path / "results/ml-100k-mm/runs.csv").write_text("model\nSASRec\n")  # results edits are not code
    git(tmp_path, "checkout", "-q", "--", "recbole_mdsrec")
    assert checkout_version(tmp_path) == changed


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert checkout_version(tmp_path) is None
