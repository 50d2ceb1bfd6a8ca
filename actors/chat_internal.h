/* actors/chat_internal.h: what the files of the chat module share (not installed; chat.h is
 * the module's description, its protocol and its design).
 *
 *   chat.c        the connection handler and the module's mount
 *   chat_room.c   the room actor: members, names, history, publishing, presence, lifecycle
 *   chat_query.c  the upgrade request's query (room and name), a pure function
 *
 * Connections and rooms share nothing but the mount's settings and counters: they only
 * exchange the messages below.
 */
#ifndef WISP_ACTORS_CHAT_INTERNAL_H
#define WISP_ACTORS_CHAT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <wisp/actor.h>

#include "chat.h"

/* Short for WISP_CHAT_NAME_MAX (NAME_MAX itself is <limits.h>'s). */
#define NAME_MAX_ WISP_CHAT_NAME_MAX

/* ---- the upgrade's query (chat_query.c) -------------------------------------------------- */

/* The room and name a client asked for; a length of 0: not given, or given empty. */
struct chat_query {
    char room[NAME_MAX_];
    uint32_t room_len;
    char name[NAME_MAX_];
    uint32_t name_len;
};

/* Read the room and name from the qn bytes of a query string (what follows the '?'; any bytes;
 * q may be NULL when qn is 0) by the rules of chat.h's CONNECTING section, into *out.
 * @return 0, or 400 when the query is refused (then *out holds nothing of use). */
int wispi_chat_parse_query(const char *q, size_t qn, struct chat_query *out);

/* ---- between connections and rooms ------------------------------------------------------- */

/* Messages between connections and rooms (application range). */
enum {
    MSG_JOIN = 0x43480001u,  /* conn -> room: struct join_req */
    MSG_SAY,                 /* conn -> room: the text as a JSON string literal */
    MSG_JOINED,              /* room -> conn: no payload */
    MSG_CLOSE,               /* room -> conn: struct close_req */
    MSG_LINGER,              /* room -> itself (timer): uint64_t generation */
    MSG_RETRY,               /* conn -> itself (timer): look the room up again */
};

struct join_req {
    uint32_t name_len; /* 0: pick a guest name */
    char name[NAME_MAX_];
};

struct close_req {
    uint16_t code;
    char reason[40]; /* NUL-terminated */
};

/* One mount of the module (chat.c makes it); its rooms and connections point at it. */
struct chat_mount {
    struct wisp_runtime *rt;
    unsigned id;
    uint32_t history;
    uint32_t max_members;
    uint32_t max_rooms;
    uint32_t linger_ms;
    _Atomic uint32_t rooms;      /* room actors alive or being created: the exact limit */
    _Atomic uint32_t live_rooms; /* rooms registered: the upgrade's early 503 */
    struct wisp_actor_def room_def; /* per mount: carries the mailbox limit */
};

/* ---- the room actor (chat_room.c) -------------------------------------------------------- */

/* The spawn argument of a room (only a connection's join spawns one). */
struct room_arg {
    struct chat_mount *m;
    uint32_t room_len;
    char room[NAME_MAX_];
};

/* "chat/M/ROOM": the room's registry name and its topic. At most 5 + 10 + 1 + 32 bytes. */
void wispi_chat_room_key(char out[64], unsigned mount_id, const char *room, size_t room_len);

/* The room actor's definition, with this mailbox limit (the mount's mailbox= setting). */
struct wisp_actor_def wispi_chat_room_def(uint32_t mailbox_limit);

#endif
