"""tsparallel's JupyterLab, as a Jupyter Server extension.

A LabServerApp (jupyterlab_server) serves the application that `npm run build` bundled into
lab-build/ at /lab: its static files, settings schemas, themes, workspaces and page config.
Two API handlers sit beside it, behind the same token:

- /tsparallel/clusters: the Clusters panel's backend. It runs the tsparallel CLI (`cluster list
  --json`, `cluster start --daemon`, `cluster engines`, `cluster stop`, `cluster remove`), which does all the work
  and says what went wrong in one line; here only the inputs are checked and the line passed on.
- /tsparallel/monitor/<profile>: the Dashboard's one websocket. One `tsparallel cluster top
  --json` per open dashboard subscribes to the controller's monitor stream and prints each reading
  as a JSON line, which is sent on as one websocket message. The stream is signed and may be
  CURVE-encrypted: reading it through the CLI keeps its checks in one place (the TypeScript
  protocol/), where a second reader here would need them written again.
- /api/me and /api/events/subscribe: the identity and the event stream JupyterLab 4 asks for,
  which Jupyter Server 1.x does not have. This server emits no events: the socket stays quiet.

`tsparallel start` sets TSPARALLEL_LAB_BUILD, TSPARALLEL_NODE and TSPARALLEL_CLI.
"""
import asyncio
import getpass
import json
import os
import re

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.zmqhandlers import WebSocketMixin
from jupyterlab_server import LabServerApp
from tornado import web
from tornado.websocket import WebSocketHandler

BUILD = os.environ.get("TSPARALLEL_LAB_BUILD", "")
HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # lab/
USER_DIR = os.path.join(os.environ.get("TSPARALLEL_DIR") or os.path.expanduser("~/.tsparallel"), "lab")
PROFILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
LAUNCHERS = ("local", "mpi")
# The most engines one profile may have, counting those still starting: the panel's limit, as a
# login node's 2 or 64 cores are shared by everyone on it (`tsparallel cluster` itself has none).
MAX_ENGINES = 256


async def run_cli(*args, timeout=180):
    """Runs `tsparallel ARGS`; returns (exit code, stdout, the last line it printed)."""
    proc = await asyncio.create_subprocess_exec(
        os.environ.get("TSPARALLEL_NODE", "node"),
        os.environ["TSPARALLEL_CLI"],
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return 1, "", f"tsparallel {args[0]} {args[1]} did not finish within {timeout} s"
    lines = [l for l in (err or out).decode().splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    return proc.returncode, out.decode(), re.sub(r"^tsparallel: ", "", last)


class ClustersHandler(APIHandler):
    @web.authenticated
    async def get(self):
        code, out, last = await run_cli("cluster", "list", "--json")
        if code != 0:
            raise web.HTTPError(500, last)
        self.finish(json.dumps({"clusters": json.loads(out)}))

    @web.authenticated
    async def post(self):
        try:
            body = self.get_json_body() or {}
        except web.HTTPError:
            return self.fail("the request body is not JSON: send an object like {\"action\": \"start\", ...}")
        if not isinstance(body, dict):
            return self.fail(f"the request body must be a JSON object, not a {type(body).__name__}")
        action = body.get("action")
        profile = str(body.get("profile", ""))
        if not PROFILE.match(profile):
            return self.fail(f"profile {profile!r} is not a profile name: use letters, digits, _ . and -")
        if action == "stop":
            code, _, last = await run_cli("cluster", "stop", "--profile", profile)
            return self.answer(code, last)
        if action == "remove":
            code, _, last = await run_cli("cluster", "remove", "--profile", profile)
            return self.answer(code, last)
        n = str(body.get("n", "")).strip()
        if not re.fullmatch(r"\d{1,6}", n) or not 1 <= int(n) <= MAX_ENGINES:
            return self.fail(f"# of engines must be a whole number from 1 to {MAX_ENGINES}; got {n or 'nothing'!r}")
        if action == "start":
            engines = body.get("engines", "local")
            if engines not in LAUNCHERS:
                return self.fail(f"unknown launcher {engines!r}: use {' or '.join(LAUNCHERS)}")
            code, _, last = await run_cli(
                "cluster", "start", "-n", n, "--profile", profile, "--engines", engines, "--daemon"
            )
            # `cluster start --daemon` ends with how to stop it: the line before says what started.
            return self.answer(code, last if code else f"cluster {profile} started with {n} engines")
        if action == "scale":
            have = await self.engines_of(profile)
            if have + int(n) > MAX_ENGINES:
                return self.fail(
                    f"cluster {profile} has {have} engines; {n} more would pass the limit of {MAX_ENGINES} per profile"
                )
            code, _, last = await run_cli("cluster", "engines", "-n", n, "--profile", profile)
            return self.answer(code, last)
        return self.fail(f"unknown action {action!r}: use start, scale, stop or remove")

    async def engines_of(self, profile):
        """The engines a profile has or is starting (0 when it cannot tell: the CLI then says why)."""
        code, out, _ = await run_cli("cluster", "list", "--json")
        if code != 0:
            return 0
        for c in json.loads(out):
            if c.get("profile") == profile:
                starting = sum(s.get("n", 0) - s.get("registered", 0) for s in c.get("sets", []) if s.get("state") == "starting")
                return (c.get("engines") or 0) + max(starting, 0)
        return 0

    def answer(self, code, line):
        if code != 0:
            return self.fail(line)
        self.finish(json.dumps({"message": line}))

    def fail(self, message):
        self.set_status(400)
        self.finish(json.dumps({"message": message}))


class MonitorHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """Relays one cluster's monitor readings to one dashboard; stops its reader when either ends."""

    proc = None
    relay = None

    async def get(self, *args, **kwargs):
        if self.get_current_user() is None:
            raise web.HTTPError(403)
        await super().get(*args, **kwargs)

    async def open(self, profile):
        if not PROFILE.match(profile):
            self.send_error_line(f"profile {profile!r} is not a profile name: use letters, digits, _ . and -")
            return self.close()
        self.proc = await asyncio.create_subprocess_exec(
            os.environ.get("TSPARALLEL_NODE", "node"),
            os.environ["TSPARALLEL_CLI"],
            "cluster", "top", "--json", "--profile", profile,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 26,  # a reading lists up to 5,000 tasks: one line can be megabytes
        )
        self.relay = asyncio.ensure_future(self.forward(self.proc))

    async def forward(self, proc):
        try:
            while line := await proc.stdout.readline():
                await self.write_message(line.decode())
        except Exception:  # the socket closed under us: on_close stops the reader
            return
        await proc.wait()
        err = [l for l in (await proc.stderr.read()).decode().splitlines() if l.strip()]
        reason = re.sub(r"^tsparallel: ", "", err[-1]) if err else "the monitor stream ended"
        self.send_error_line(reason)
        self.close()

    def send_error_line(self, message):
        try:
            self.write_message(json.dumps({"error": message}))
        except Exception:
            pass

    def on_message(self, message):
        pass

    def on_close(self):
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
        if self.relay:
            self.relay.cancel()


class MeHandler(APIHandler):
    @web.authenticated
    def get(self):
        name = getpass.getuser()
        identity = {
            "username": name,
            "name": name,
            "display_name": name,
            "initials": name[:1].upper(),
            "avatar_url": None,
            "color": None,
        }
        self.finish(json.dumps({"identity": identity, "permissions": {}}))


class EventsHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    async def get(self, *args, **kwargs):
        if self.get_current_user() is None:
            raise web.HTTPError(403)
        await super().get(*args, **kwargs)

    def on_message(self, message):
        pass


class TsParallelLab(LabServerApp):
    name = "tsparallel_lab"
    load_other_extensions = True
    app_name = "JupyterLab (tsparallel)"
    app_version = "4"
    app_url = "/lab"
    default_url = "/lab"
    extension_url = "/lab"
    static_dir = os.path.join(BUILD, "static")
    schemas_dir = os.path.join(BUILD, "schemas")
    themes_dir = os.path.join(BUILD, "themes")
    templates_dir = os.path.join(HERE, "templates")
    app_settings_dir = os.path.join(HERE, "settings")
    user_settings_dir = os.path.join(USER_DIR, "user-settings")
    workspaces_dir = os.path.join(USER_DIR, "workspaces")

    def initialize_handlers(self):
        super().initialize_handlers()
        self.handlers.extend(
            [
                ("/tsparallel/clusters", ClustersHandler),
                (r"/tsparallel/monitor/([^/]+)", MonitorHandler),
                ("/api/me", MeHandler),
                ("/api/events/subscribe", EventsHandler),
            ]
        )


def _jupyter_server_extension_points():
    return [{"module": "tsparallel_lab", "app": TsParallelLab}]
