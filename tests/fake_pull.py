"""A recording fake of `app.pull_port.PullPort`: one pull request's GitHub, in memory. The publishing rules
(app.plan and app.publish.apply) are tested against it without HTTP, JWTs or a database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.github import NotFound
from app.github_objects import PullCommit
from app.pull_port import PullRef


@dataclass
class RecordingPull:
    ref: PullRef = field(default_factory=lambda: PullRef(77, "acme/widgets", 482))
    marker: str = "<!-- tokentrail:pr-comment -->"
    comments: dict[int, str] = field(default_factory=dict)  # ours and other people's, by id
    ours: set[int] = field(default_factory=set)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _next_id: int = 100

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def get_pull(self) -> dict[str, Any]:
        self.calls.append(("get_pull", None))
        return {}

    def list_commits(self) -> list[PullCommit]:
        self.calls.append(("list_commits", None))
        return []

    def list_reviews(self) -> list[dict[str, Any]]:
        self.calls.append(("list_reviews", None))
        return []

    def get_file(self, path: str, *, ref: str) -> str | None:
        self.calls.append(("get_file", (path, ref)))
        return None

    def find_comment(self) -> tuple[int, str] | None:
        self.calls.append(("find_comment", None))
        for comment_id in sorted(self.comments):
            if comment_id in self.ours and self.marker in self.comments[comment_id]:
                return comment_id, self.comments[comment_id]
        return None

    def create_comment(self, body: str) -> int:
        comment_id = self._id()
        self.comments[comment_id] = body
        self.ours.add(comment_id)
        self.calls.append(("create_comment", comment_id))
        return comment_id

    def update_comment(self, comment_id: int, body: str) -> None:
        self.calls.append(("update_comment", comment_id))
        if comment_id not in self.comments:
            raise NotFound(f"comment {comment_id}", status=404, retryable=False)
        self.comments[comment_id] = body

    def upsert_check_run(
        self, *, check_run_id: int | None, head_sha: str, output: dict[str, str], conclusion: str
    ) -> int:
        run = {"head_sha": head_sha, "output": output, "conclusion": conclusion}
        if check_run_id is None:
            check_run_id = self._id()
            self.calls.append(("create_check_run", check_run_id))
        else:
            self.calls.append(("update_check_run", check_run_id))
        self.check_runs[check_run_id] = run
        return check_run_id

    def writes(self) -> list[str]:
        return [verb for verb, _ in self.calls if verb.startswith(("create", "update"))]
