/* actors/chat.h: chat rooms over WebSocket, the built-in module "chat".
 *
 *     wisp --route /chat=chat                      # defaults
 *     wisp --route /chat=chat:history=100,linger=0 # settings, comma-separated
 *
 * CONNECTING
 *
 *     ws://HOST/chat?room=ROOM&name=NAME
 *
 * Both parameters are optional and URL-decoded (%XX escapes, '+' is a space). room defaults to
 * "lobby"; without a name the room picks "guest-N". An empty value ("name=", or "name" with no
 * '=') counts as absent, but it still counts as given: "room=&room=x" is a parameter given
 * twice. A room or name must be 1 to 32 bytes of well-formed UTF-8 with no control characters
 * (U+0000-U+001F, U+007F-U+009F) and no U+2028/U+2029; anything else (a bad escape, a
 * parameter given twice, invalid UTF-8, too long) refuses the upgrade with 400. Other
 * parameters are ignored, even malformed ones; keys are matched as written ("Room" or "r%6Fom"
 * is another parameter). When the room does not exist yet and the mount already has
 * max_rooms rooms, the upgrade is refused with 503.
 *
 * PROTOCOL (JSON text frames, one object per frame)
 *
 * Server to client:
 *
 *   {"type":"welcome","you":"alice","room":"lobby","members":["bob","alice"],
 *    "history":[{"from":"bob","text":"hi","ts":1700000000000}, ...]}
 *       First, exactly once. `you` is the name the room gave this connection: the asked
 *       name, or, when someone in the room already has it, the name with "-2", "-3"... added
 *       (the asked name cut at a character boundary so that the result stays within 32
 *       bytes). `members` lists everyone in the room, this connection included, in no
 *       particular order. `history` holds the room's last `history` messages, oldest first.
 *   {"type":"join","name":"carol","members":[...]}
 *   {"type":"leave","name":"carol","members":[...]}
 *       Someone entered or left; `members` is the full list after the change. The joiner
 *       gets its own join event too, right after its welcome (members then match the
 *       welcome's).
 *   {"type":"message","from":"alice","text":"hi","ts":1700000000000}
 *       A message said in the room, to everyone in it, the sender included. ts is the room's
 *       clock when it took the message, in milliseconds since the Unix epoch (never less than
 *       the previous message's, even if the system clock steps back).
 *   {"type":"error","error":"..."}
 *       The client's last message was refused; the connection stays open. The texts:
 *         "invalid JSON"                   not a JSON object (RFC 8259, strict), or "type"
 *                                          or "text" given twice
 *         "missing type"                   no "type", or it is not a string
 *         "unknown type"                   a type other than "message"
 *         "missing text"                   no "text", or it is not a string
 *         "empty text"
 *         "text too long (max 4096 bytes)" the decoded text, counted in UTF-8 bytes
 *         "binary messages are not supported"
 *         "not in a room"                  not yet (the room is being looked up again) or
 *                                          not any more (the connection is being closed)
 *         "room busy, message dropped"     the room actor's mailbox is full (it is behind by
 *                                          `mailbox` messages): the message was not said
 *         "message dropped", "out of memory"   should not happen
 *   Every value is escaped JSON: '"', '\\' and control characters are escaped, as are
 *   U+2028/U+2029; everything else is UTF-8 as the sender wrote it.
 *
 * Client to server:
 *
 *   {"type":"message","text":"..."}
 *       Say something. Other keys are ignored; the sender's name is the room's, never the
 *       client's. A message sent before the welcome arrived is said after the join (the room
 *       handles a connection's messages in order), unless the room it was sent to stopped
 *       before letting the connection in: then it is lost, and the connection joins anew.
 *       A text frame over 64 KiB (or the program's smaller message limit) is closed with
 *       1009 like on any route; a message between that and the 4096-byte text limit gets the
 *       "text too long" error.
 *
 * Closes from the server: 1013 "room is full" (max_members reached), 1013 "too many rooms",
 * 1013 "try again later" (the room could not be reached after several attempts), 1011
 * "room failed" (the room actor died abnormally; the connection cannot continue without
 * it), and the program's usual 1001 at shutdown.
 *
 * SETTINGS (the mount argument: key=value pairs separated by commas; anything else, an
 * unknown key or a value out of range, fails the mount with -EINVAL and a line on stderr)
 *
 *   history=N      messages a room remembers for its welcome, 0-1000 (default 50)
 *   max_members=N  connections per room, 1-100000 (default 10000; beyond, close 1013). Every
 *                  join and leave carries the whole member list, so a room costs O(members)
 *                  per presence change: keep it at what a room really needs.
 *   max_rooms=N    rooms per mount, 1-1000000 (default 10000; beyond, 503 or close 1013)
 *   linger=MS      how long an empty room (and its history) lives on, 0-86400000
 *                  (default 30000; 0: it stops as soon as its last member leaves)
 *   mailbox=N      room actor's mailbox limit, 16-1000000 (default 10000)
 *
 * DESIGN
 *
 * One room actor per room, found through the runtime's name registry under "chat/M/ROOM" (M
 * numbers the mounts of this process, so two chat routes never share rooms). The room holds
 * the members (address, monitor reference, name; hash-indexed by address and by name), the
 * history ring, and the room's topic, named like its registry entry. Connection actors never
 * touch room state; they only exchange messages with the room.
 *
 * Joining: on open, a connection looks the room up; when there is none it spawns one, which
 * registers its own name in its init. Two connections that create the same room at once both
 * spawn, one registration wins, the other room's init fails with -EEXIST and that room never
 * runs. The connection monitors the room it picked and sends it JOIN(asked name); if the
 * room dies before answering (it lost that race, or it was stopping because it was empty)
 * the DOWN sends the connection back to the lookup. A lookup that finds a dead room, or finds
 * none while the mount is at max_rooms (another connection may be creating this very room),
 * is retried after 5, 10, 20... ms; after 8 attempts in all the connection is closed with 1013
 * ("try again later" or "too many rooms"). The 503 at the upgrade is the early answer when
 * max_rooms rooms are up and registered and this room is not one of them.
 * The room picks the unique name, monitors the connection, builds the welcome and calls
 * wisp_subscribe_to(conn, topic, TEXT, welcome): the welcome is queued first and the
 * subscription covers every later publish of the room, with no gap and no duplicate. It then
 * publishes the join event to the topic (so the joiner sees it after its welcome) and tells
 * the connection JOINED.
 *
 * Saying: the connection validates the client's JSON, escapes the text, and sends it to the
 * room with wisp_try_send (a full room mailbox is reported to the client, never queued
 * without bound). The room looks the sender up by the message's sender address (never by
 * anything the client wrote), stamps the time, appends to the history ring and publishes:
 * one publisher per topic, so every member sees the same messages in the same order, which is
 * also the history's order, each exactly once (wisp/pubsub.h). The frame is built once and
 * shared by every subscriber.
 *
 * Leaving: the room learns that a member is gone from its monitor's DOWN, whatever ended the
 * connection (a close, a TCP reset, a crash, a kill); the connection left the topic before it
 * stopped. The room publishes the leave event. A room that becomes empty arms a linger timer;
 * a join cancels it. When it fires with the room still empty, the room removes its registry
 * name first and then stops, so later lookups create a new room, and a JOIN that was already
 * on its way to the stopping room comes back to its connection as a DOWN and is retried.
 *
 * Bounds: names and rooms 32 bytes, text 4096 bytes, history N messages per room,
 * max_members per room, max_rooms per mount, the room's mailbox (mailbox=). A slow reader
 * falls under the route's send cap like any subscriber (wisp/pubsub.h).
 *
 * Written against the public headers only (<wisp/...>).
 */
#ifndef WISP_ACTORS_CHAT_H
#define WISP_ACTORS_CHAT_H

#include <wisp/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest room or member name, in bytes. */
#define WISP_CHAT_NAME_MAX 32
/** Longest text of one chat message, in bytes (UTF-8, decoded). */
#define WISP_CHAT_TEXT_MAX 4096

/** The "chat" module (built in: a plain const struct, not WISP_MODULE_DEFINE). */
extern const struct wisp_module wisp_chat_module;

#ifdef __cplusplus
}
#endif
#endif
