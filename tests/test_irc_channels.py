"""IRC channels and messages against jaraco's `irc` library: JOIN, TOPIC, PART,
QUIT, PRIVMSG/NOTICE, LIST/NAMES/WHO/WHOIS, MODE, KICK, name folding, AWAY,
USERHOST, ISON, CTCP (RFC 1459/2812, modern.ircdocs.horse)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.irc_client_helpers import (
    BOT,
    HOST,
    SERVER,
    Connect,
    connecting,
    join,
    serving,
)
from tests.irc_helpers import RawIrc


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from serving()


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Connect]:
    yield from connecting(server)


# --- channels ------------------------------------------------------------------------


def test_join_echo_names_and_topic_replies(connect: Connect) -> None:
    gina = connect("gina")
    since = gina.mark()
    gina.do("join", "#room")
    echo = gina.expect("join", since=since)
    assert (echo.nick, echo.target) == ("gina", "#room")
    names = gina.expect("namreply", since=since)
    assert names.args == ("=", "#room", "@gina")  # the first in, creating it: operator
    end = gina.expect("endofnames", since=since)
    assert end.args[0] == "#room"
    assert gina.index(echo) < gina.index(names) < gina.index(end)
    assert gina.seen("currenttopic", since) == gina.seen("notopic", since) == []

    hank = connect("hank")
    since_gina = gina.mark()
    join(hank, "#room")
    assert gina.expect("join", since=since_gina).nick == "hank"
    hank_names = hank.expect("namreply", lambda e: e.args[1] == "#room")
    assert sorted(hank_names.args[2].split()) == ["@gina", "hank"]

    gina.do("topic", "#room", "release at noon")
    for member in (gina, hank):
        topic = member.expect("topic", lambda e: e.target == "#room")
        assert (topic.nick, topic.args) == ("gina", ("release at noon",))

    # A topic: 332 and 333 on JOIN, before NAMES; never 331.
    ivy = connect("ivy")
    since = ivy.mark()
    join(ivy, "#room")
    joined = ivy.expect("join", since=since)
    topic = ivy.expect("currenttopic", since=since)
    info = ivy.expect("topicinfo", since=since)
    names = ivy.expect("namreply", since=since)
    assert topic.args == ("#room", "release at noon")
    assert info.args[:2] == ("#room", "gina") and int(info.args[2]) > 1_700_000_000
    assert ivy.index(joined) < ivy.index(topic) < ivy.index(info) < ivy.index(names)
    assert ivy.seen("notopic", since) == []

    # A log channel: LogBot holds it (an operator) and set its topic.
    since = ivy.mark()
    join(ivy, "#logs-error")
    topic = ivy.expect("currenttopic", since=since)
    assert topic.args[0] == "#logs-error" and "!help" in topic.args[1]
    assert ivy.expect("topicinfo", since=since).args[1] == BOT
    names = ivy.expect("namreply", since=since)
    assert "@" + BOT in names.args[2].split() and "ivy" in names.args[2].split()
    assert ivy.seen("notopic", since) == []


def test_topic_rules(connect: Connect) -> None:
    jack = connect("jack")  # creates #topics: its operator
    kim = connect("kim")
    lee = connect("lee")  # never joins
    join(jack, "#topics")
    join(kim, "#topics")

    since = kim.mark()
    kim.do("topic", "#topics")
    kim.sync()
    assert [e.args[0] for e in kim.seen("notopic", since)] == ["#topics"]

    kim.do("topic", "#topics", "mine now")  # +t: operators only
    lee.do("topic", "#topics", "from outside")
    lee.do("topic", "#nowhere", "x")
    kim.sync()
    lee.sync()
    assert [e.args[0] for e in kim.seen("chanoprivsneeded", since)] == ["#topics"]
    assert [e.args[0] for e in lee.seen("notonchannel")] == ["#topics"]
    assert [e.args[0] for e in lee.seen("nosuchchannel")] == ["#nowhere"]
    assert kim.seen("topic", since) == []

    # Anyone may read a channel's topic; the operator sets it, cut to TOPICLEN.
    jack.do("topic", "#topics", "t" * 400)
    set_ = kim.expect("topic", since=since)
    topiclen = jack.conn.features.topiclen
    assert isinstance(topiclen, int) and topiclen < 400
    assert set_.nick == "jack" and set_.text == "t" * topiclen
    since = lee.mark()
    lee.do("topic", "#topics")
    assert lee.expect("currenttopic", since=since).args == ("#topics", "t" * topiclen)
    assert lee.expect("topicinfo", since=since).args[1] == "jack"

    # -t: every member may set it; an empty topic clears it.
    jack.do("mode", "#topics", "-t")
    assert kim.expect("mode", lambda e: e.args == ("-t",), since).nick == "jack"
    kim.do("topic", "#topics", "kim was here")
    assert jack.expect("topic", lambda e: e.text == "kim was here").nick == "kim"
    since = kim.mark()
    kim.do("send_raw", "TOPIC #topics :")
    assert jack.expect("topic", lambda e: e.text == "").nick == "kim"
    kim.do("topic", "#topics")
    assert kim.expect("notopic", since=since).args[0] == "#topics"


def test_part(connect: Connect) -> None:
    mia = connect("mia")
    ned = connect("ned")
    join(mia, "#parting")
    join(ned, "#parting")
    mia.do("topic", "#parting", "old topic")
    ned.expect("topic")
    since = ned.mark()
    # The library's part() sends its reason without the ':' a multi-word one needs.
    mia.do("send_raw", "PART #parting :off to lunch")
    for member in (mia, ned):
        left = member.expect("part", lambda e: e.target == "#parting")
        assert (left.nick, left.args) == ("mia", ("off to lunch",))
    mia.do("part", "#parting")
    mia.do("part", "#never-was")
    mia.sync()
    assert [e.args[0] for e in mia.seen("notonchannel")] == ["#parting"]
    assert [e.args[0] for e in mia.seen("nosuchchannel")] == ["#never-was"]
    ned.do("names", "#parting")
    assert ned.expect("namreply", since=since).args[2].split() == ["ned"]

    # The last one out: the channel is gone (its topic too), and whoever creates
    # it again runs it.
    ned.do("part", "#parting")
    ned.expect("part", since=since)
    since = mia.mark()
    mia.do("join", "#parting")
    assert mia.expect("namreply", since=since).args[2] == "@mia"
    mia.sync()
    assert mia.seen("currenttopic", since) == []

    # JOIN 0 leaves every channel.
    join(mia, "#parting2")
    since = mia.mark()
    mia.do("join", "0")
    mia.sync()
    parted = {e.target for e in mia.seen("part", since) if e.nick == "mia"}
    assert parted == {"#parting", "#parting2"}


def test_quit_is_told_to_channel_members(server: ServerProcess, connect: Connect) -> None:
    olga = connect("olga")
    pete = connect("pete")
    for channel in ("#quitters", "#quitters2"):
        join(olga, channel)
        join(pete, channel)
    pete.do("quit", "gone fishing")
    gone = olga.expect("quit", lambda e: e.nick == "pete")
    assert gone.text == "Quit: gone fishing"
    olga.sync()
    assert len(olga.seen("quit")) == 1  # once, though they shared two channels
    error = pete.expect("error")  # the server's last word to the quitter
    assert error.target.startswith("Closing Link")
    wait_for("pete's disconnection", lambda: pete.connected, lambda up: not up, timeout=10)
    # The nick is free again, and no longer in the channel.
    since = olga.mark()
    olga.do("whois", "pete")
    assert olga.expect("nosuchnick", since=since).args[0] == "pete"
    olga.do("names", "#quitters")
    assert olga.expect("namreply", since=since).args[2].split() == ["@olga"]
    connect("pete")

    # A connection closed without QUIT is told as a QUIT too.
    with RawIrc(server.ports["irc"]) as raw:
        raw.register("vanishing")
        raw.send("JOIN #quitters")
        raw.expect_command("366")
    assert olga.expect("quit", lambda e: e.nick == "vanishing").text


def test_privmsg_and_notice_to_users_and_channels(connect: Connect) -> None:
    quinn = connect("quinn")
    rosa = connect("rosa")
    sam = connect("sam")  # outside #talk
    join(quinn, "#talk")
    join(rosa, "#talk")

    quinn.do("privmsg", "#talk", "hello channel")
    quinn.do("notice", "#talk", "channel notice")
    quinn.do("privmsg", "rosa", "hello rosa")
    quinn.do("notice", "ROSA", "notice to rosa")
    msg = rosa.expect("pubmsg")
    assert (msg.nick, msg.target, msg.text) == ("quinn", "#talk", "hello channel")
    note = rosa.expect("pubnotice")
    assert (note.nick, note.target, note.text) == ("quinn", "#talk", "channel notice")
    private = rosa.expect("privmsg")
    assert (private.nick, private.target, private.text) == ("quinn", "rosa", "hello rosa")
    assert rosa.expect("privnotice").text == "notice to rosa"
    done = quinn.sync()
    assert quinn.seen("pubmsg", until=done) == quinn.seen("pubnotice", until=done) == []

    # From outside a +n channel: 404 for PRIVMSG, nothing at all for NOTICE.
    since = rosa.mark()
    since_sam = sam.mark()
    sam.do("privmsg", "#talk", "let me in")
    sam.do("notice", "#talk", "me too")
    sam.do("privmsg", "nobody-here", "hello?")
    sam.do("notice", "nobody-here", "hello?")
    done = sam.sync()
    replies = [e for e in sam.seen(since=since_sam, until=done + 1) if e.source == SERVER]
    assert [(e.type, e.args[0]) for e in replies] == [
        ("cannotsendtochan", "#talk"),
        ("nosuchnick", "nobody-here"),
        ("pong", replies[-1].args[0]),
    ]
    rosa.sync()
    assert rosa.seen("pubmsg", since) == rosa.seen("pubnotice", since) == []

    # No recipient, no text.
    since = sam.mark()
    sam.do("send_raw", "PRIVMSG")
    sam.do("send_raw", "PRIVMSG rosa")
    sam.do("send_raw", "PRIVMSG rosa :")
    sam.sync()
    assert len(sam.seen("norecipient", since)) == 1
    assert len(sam.seen("notexttosend", since)) == 2


def test_list_names_who_whois(connect: Connect) -> None:
    tom = connect("tom")
    uma = connect("uma")
    join(tom, "#lw")
    join(uma, "#lw")
    tom.do("topic", "#lw", "list me")
    tom.expect("topic")

    since = tom.mark()
    tom.do("list")
    start = tom.expect("liststart", since=since)
    end = tom.expect("listend", since=since)
    rows = {e.args[0]: e.args[1:] for e in tom.seen("list", since)}
    assert tom.index(start) < tom.index(end)
    for channel in ("#logs-all", "#logs-error", "#logs-warning", "#logs-info", "#logs-debug"):
        assert channel in rows, rows
    assert rows["#lw"] == ("2", "list me")

    since = uma.mark()
    uma.do("names", "#lw")
    assert sorted(uma.expect("namreply", since=since).args[2].split()) == ["@tom", "uma"]
    assert uma.expect("endofnames", since=since).args[0] == "#lw"

    since = uma.mark()
    uma.do("who", "#lw")
    end = uma.expect("endofwho", since=since)
    who = {e.args[4]: e.args for e in uma.seen("whoreply", since)}
    assert end.args[0] == "#lw" and set(who) == {"tom", "uma"}
    channel, user, host, server, _nick, flags, last = who["tom"]
    assert (channel, user, host, server, flags) == ("#lw", "~tom", HOST, SERVER, "H@")
    assert last == "0 tom (jaraco irc)"  # hop count, real name
    assert who["uma"][5] == "H"

    since = uma.mark()
    uma.do("whois", "tom")
    end = uma.expect("endofwhois", since=since)
    user_ = uma.expect("whoisuser", since=since)
    assert user_.args == ("tom", "~tom", HOST, "*", "tom (jaraco irc)")
    assert uma.expect("whoisserver", since=since).args[:2] == ("tom", SERVER)
    assert "@#lw" in uma.expect("whoischannels", since=since).args[1].split()
    assert end.args[0] == "tom" and uma.index(user_) < uma.index(end)

    since = uma.mark()
    uma.do("whois", "ghost")
    assert uma.expect("nosuchnick", since=since).args[0] == "ghost"
    assert uma.expect("endofwhois", since=since).args[0] == "ghost"
    assert uma.seen("whoisuser", since) == []

    since = uma.mark()
    uma.do("whois", BOT)
    assert uma.expect("whoisuser", since=since).args[0] == BOT
    uma.expect("endofwhois", since=since)


def test_mode_channel_and_user(connect: Connect) -> None:
    vic = connect("vic")
    wes = connect("wes")
    join(vic, "#modes")
    join(wes, "#modes")

    since = wes.mark()
    wes.do("send_raw", "MODE #modes")
    is_ = wes.expect("channelmodeis", since=since)
    assert is_.args[0] == "#modes" and set(is_.args[1].lstrip("+")) >= {"n", "t"}
    created = wes.expect("channelcreate", since=since)
    assert created.args[0] == "#modes" and int(created.args[1]) > 1_700_000_000
    wes.do("send_raw", "MODE #modes b")
    wes.do("send_raw", "MODE #modes +b")
    wes.sync()
    assert [e.args[0] for e in wes.seen("endofbanlist", since)] == ["#modes", "#modes"]
    assert wes.seen("banlist", since) == []

    # Operators only change a channel's modes; +o makes another an operator.
    wes.do("mode", "#modes", "-n")
    assert wes.expect("chanoprivsneeded", since=since).args[0] == "#modes"
    vic.do("mode", "#modes", "+o wes")
    for member in (vic, wes):
        given = member.expect("mode", lambda e: e.args == ("+o", "wes"))
        assert (given.nick, given.target) == ("vic", "#modes")
    wes.do("names", "#modes")
    assert sorted(wes.expect("namreply", since=since).args[2].split()) == ["@vic", "@wes"]

    # User modes: one's own only.
    since = wes.mark()
    wes.do("send_raw", "MODE wes")
    assert wes.expect("umodeis", since=since).args[0].startswith("+")
    wes.do("mode", "wes", "+i")
    echoed = wes.expect("umode", since=since)
    assert (echoed.target, echoed.args) == ("wes", ("+i",))
    wes.do("mode", "vic", "+i")
    assert wes.expect("usersdontmatch", since=since).target == "wes"
    wes.do("mode", "ghost", "+i")
    assert wes.expect("nosuchnick", since=since).args[0] == "ghost"


def test_kick_by_operator_only(connect: Connect) -> None:
    xena = connect("xena")  # operator of #kicks
    yuri = connect("yuri")
    zoe = connect("zoe")
    for client in (xena, yuri, zoe):
        join(client, "#kicks")

    since = yuri.mark()
    yuri.do("kick", "#kicks", "xena", "coup")
    assert yuri.expect("chanoprivsneeded", since=since).args[0] == "#kicks"
    xena.do("kick", "#kicks", "nobody", "x")
    assert xena.expect("usernotinchannel").args[:2] == ("nobody", "#kicks")
    assert xena.seen("kick") == []

    xena.do("kick", "#kicks", "yuri", "behave")
    for member in (xena, yuri, zoe):
        kicked = member.expect("kick")
        assert (kicked.nick, kicked.target, kicked.args) == ("xena", "#kicks", ("yuri", "behave"))
    since = yuri.mark()
    yuri.do("privmsg", "#kicks", "still here?")
    assert yuri.expect("cannotsendtochan", since=since).args[0] == "#kicks"
    since_zoe = zoe.mark()
    zoe.do("names", "#kicks")
    assert sorted(zoe.expect("namreply", since=since_zoe).args[2].split()) == ["@xena", "zoe"]
    yuri.do("kick", "#kicks", "zoe")
    assert yuri.expect("notonchannel", since=since).args[0] == "#kicks"


def test_channel_names_fold_in_ascii_only(connect: Connect) -> None:
    """CASEMAPPING=ascii (modern.ircdocs.horse): only A-Z and a-z are equal in
    another case; other characters are distinct. #Äpfel and #äpfel are two
    channels, and so are #keys and #\u212aeys (KELVIN SIGN, which str.lower()
    makes a k)."""
    jay = connect("jay")
    kay = connect("kay")
    for mine, other in (("#Äpfel", "#äpfel"), ("#keys", "#\u212aeys")):
        join(jay, mine)
        since = kay.mark()
        since_jay = jay.mark()
        kay.do("join", other)
        echo = kay.expect("join", since=since)
        assert echo.target == other
        assert kay.expect("namreply", since=since).args[1:] == (other, "@kay")
        jay.sync()
        assert jay.seen("join", since_jay) == []


def test_away_userhost_ison_version_motd(connect: Connect) -> None:
    """The smaller commands docs/irc.md lists: AWAY (306/305, 301 to a sender,
    G in WHO), USERHOST (302), ISON (303), VERSION (351), MOTD."""
    lia = connect("lia")
    max_ = connect("max")
    join(lia, "#away")
    join(max_, "#away")
    since = lia.mark()
    lia.do("send_raw", "AWAY :at lunch")
    assert lia.expect("nowaway", since=since).target == "lia"
    since_max = max_.mark()
    max_.do("privmsg", "lia", "are you there?")
    away = max_.expect("away", since=since_max)
    assert away.args == ("lia", "at lunch")
    assert lia.expect("privmsg", since=since).text == "are you there?"
    max_.do("who", "#away")
    max_.expect("endofwho", since=since_max)
    flags = {e.args[4]: e.args[5] for e in max_.seen("whoreply", since_max)}
    assert flags == {"lia": "G@", "max": "H"}
    max_.do("send_raw", "USERHOST lia max")  # the library's userhost() joins with commas
    hosts = max_.expect("userhost", since=since_max).text.split()
    assert sorted(hosts) == [f"lia=-~lia@{HOST}", f"max=+~max@{HOST}"]
    max_.do("send_raw", "ISON lia ghost MAX")
    assert max_.expect("ison", since=since_max).text.split() == ["lia", "max"]
    max_.do("version")
    assert max_.expect("version", since=since_max).args[1] == SERVER
    max_.do("motd")
    max_.expect("endofmotd", since=since_max)
    lia.do("send_raw", "AWAY")
    assert lia.expect("unaway", since=since).target == "lia"
    since_max = max_.mark()
    max_.do("privmsg", "lia", "back?")
    max_.sync()
    assert max_.seen("away", since_max) == []


def test_ctcp_to_logbot_is_not_answered(connect: Connect) -> None:
    nia = connect("nia")
    since = nia.mark()
    nia.do("ctcp", "VERSION", BOT)
    nia.do("ctcp", "PING", BOT, "12345")
    nia.sync()
    assert [e for e in nia.seen(since=since) if e.nick == BOT] == []
