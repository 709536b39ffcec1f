"""The sandbox in a child process: ``bloom-pipeline sandbox`` on free ports, for the demo.

In-process, the simulators and the sync share one interpreter lock, so every API call pays for both
sides on one core. A child process serves on the other core — as a real API would be elsewhere — and
the demo talks to it only over HTTP, like any client.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

_URL_LINE = re.compile(r"^(Bloomerang v2 URL|WeGive URL|Handbid URL):\s+(\S+)")
_ORG_LINE = re.compile(r"^Handbid organization id:\s+(\d+)")
_API = {"Bloomerang v2 URL": "bloomerang", "WeGive URL": "wegive", "Handbid URL": "handbid"}


class SandboxProcess:
    """``with SandboxProcess(donors=2000, seed=42) as sb: sb.urls, sb.handbid_org_id``.

    ``state``: serve a saved state (``bloom-pipeline sandbox --state``; ``donors`` / ``seed`` must be its own);
    ``save_state``: the child saves its state to that file when it is stopped (``--save-state``)."""

    def __init__(self, donors: int = 2000, seed: int = 42, rate_limit: str = "1000/3600",
                 startup_timeout: float = 120.0, state: str | None = None, save_state: str | None = None) -> None:
        self.args = [sys.executable, "-m", "bloom_pipeline.cli", "sandbox", "--bloomerang-port", "0",
                     "--wegive-port", "0", "--handbid-port", "0", "--donors", str(donors), "--seed", str(seed),
                     "--rate-limit", rate_limit]
        self.args += ["--state", str(state)] if state is not None else []
        self.args += ["--save-state", str(save_state)] if save_state is not None else []
        self.startup_timeout = startup_timeout
        self.urls: dict[str, str] = {}
        self.handbid_org_id: int | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> SandboxProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                         env=env)
        deadline = time.monotonic() + self.startup_timeout
        assert self._process.stdout is not None
        while self.handbid_org_id is None:
            line = self._process.stdout.readline()
            if not line:
                self.__exit__()
                raise RuntimeError("the sandbox process exited before it was serving")
            if match := _URL_LINE.match(line):
                self.urls[_API[match.group(1)]] = match.group(2)
            elif match := _ORG_LINE.match(line):
                self.handbid_org_id = int(match.group(1))
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the sandbox process did not start in time")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15 if "--save-state" not in self.args else 600)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
