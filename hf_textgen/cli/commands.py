"""The commands of a conversation (``/help`` lists them). Bad input to a command gets one line
and the session goes on."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from . import conversation
from .exits import PROG, UsageError

if TYPE_CHECKING:
    from .session import Session

HELP = """\
Type a message and press Enter to send it with the conversation so far.
  A line ending in \\ continues on the next line; or start with \"\"\" and end with \"\"\"
  (on a later line) for several lines. Start with // to send a message beginning with /.
  Ctrl-C stops an answer: its connection is closed, the partial answer stays in the
  conversation. At the prompt Ctrl-C clears the line. Ctrl-D or /exit ends the session.
  A turn that fails leaves the conversation as it was: press Up and Enter to send it again.
Commands:
  /system TEXT        set the system message (/system alone shows it, /system - removes it)
  /model NAME         switch to another model (a Hub id or an alias; /model alone shows it)
  /provider NAME...   use these providers, in this order (/provider alone: automatic)
  /reset              forget the conversation (the system message, model and providers stay)
  /save FILE          write the conversation to FILE as a JSON list of messages
  /load FILE          continue a conversation written by /save (also: hf-textgen chat --load FILE)
  /help               this text
  /exit               end the session"""


def _check(model: str, providers: List[str]) -> None:
    """Refuse a bad model id or provider name now rather than at the next turn."""
    from hf_textgen.routing import check_routing

    from .chat import provider_choice

    check_routing(model, provider_choice(providers))


def do_system(session: Session, text: str) -> None:
    if not text:
        current = conversation.system_of(session.messages)
        session.note(f"system: {current}" if current else "no system message (set one with /system TEXT)")
        return
    session.messages = conversation.with_system(session.messages, None if text == "-" else text)
    session.note("system message removed" if text == "-" else "system message set")


def do_model(session: Session, text: str) -> None:
    if text:
        from hf_textgen import HuggingFaceAPI

        model = HuggingFaceAPI.get_model(text)
        if not session.options.get("api_base"):
            _check(model, session.providers)
        session.model = model
    session.note(session.describe())


def do_provider(session: Session, text: str) -> None:
    if session.options.get("api_base"):
        raise UsageError("/provider: there are no providers with --api-base; the server there answers itself")
    names = text.split()
    _check(session.model.partition(":")[0], names)
    session.providers = names
    session.note(session.describe())


def do_reset(session: Session, text: str) -> None:
    session.messages = conversation.with_system([], conversation.system_of(session.messages))
    session.note("conversation cleared")


def do_save(session: Session, text: str) -> None:
    if not text:
        raise UsageError("/save needs a file name: /save FILE")
    conversation.save(text, session.messages)
    session.note(f"saved {len(session.messages)} messages to {text}")


def do_load(session: Session, text: str) -> None:
    if not text:
        raise UsageError("/load needs a file name: /load FILE")
    session.messages = conversation.load(text)
    session.note(f"loaded {len(session.messages)} messages from {text}")


def do_help(session: Session, text: str) -> None:
    session.tell(HELP)


COMMANDS: Dict[str, Callable[["Session", str], None]] = {
    "/system": do_system, "/model": do_model, "/provider": do_provider, "/reset": do_reset,
    "/save": do_save, "/load": do_load, "/help": do_help,
}
EXITS = ("/exit", "/quit")


def run_command(session: Session, line: str) -> bool:
    """Run one ``/command``; False when the session should end."""
    name, _, rest = line.strip().partition(" ")
    if name in EXITS:
        return False
    handler: Optional[Callable[["Session", str], None]] = COMMANDS.get(name)
    try:
        if handler is None:
            raise UsageError(f"unknown command {name}; /help lists the commands (// sends a message starting with /)")
        handler(session, rest.strip())
    except BrokenPipeError:
        raise
    except Exception as error:  # UsageError, ConfigurationError (bad model id, provider name): one line
        from .exits import error_message

        if session.args.debug:
            raise
        session.tell(f"{PROG}: error: {error_message(error)}")
    return True
