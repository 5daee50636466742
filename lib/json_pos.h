/*
 * Positions in JSON text. jansson keeps none for the values it parses, so
 * a problem found later in the parsed tree ("observation.qps: expected a
 * number") is placed back in the text by reading the text again, here:
 * cps_json_locate finds the value at a path of keys and indices and says
 * where it starts as file:line:col does.
 *
 * Positions count as jansson's syntax errors do, so that both kinds of
 * error in one file agree: lines are 1-based and end at '\n' only; columns
 * are 1-based and count characters (UTF-8 sequences), not bytes. A UTF-8
 * byte order mark at the start is skipped and, being one character, counts
 * as one column.
 *
 * Everything here reads only text[0..len) whatever the bytes are; on text
 * that is not JSON (or not the text the tree came from) a lookup fails, it
 * never reads past the end. Nothing allocates.
 */
#ifndef CPS_JSON_POS_H
#define CPS_JSON_POS_H

#include <stddef.h>

/* A place in a JSON text: the byte at `at` is at line:col. */
struct cps_json_cursor {
    const char *text;
    size_t len;
    size_t at;
    int line, col;
};

/* One step of a path: the member `key` of an object, or, when key is NULL,
 * the element `index` of an array. */
struct cps_json_step {
    const char *key;
    size_t index;
};

/* A cursor at the start of text (past a byte order mark). */
void cps_json_cursor_init(struct cps_json_cursor *c, const char *text, size_t len);

/* Skip blanks (space, tab, CR, LF): the next byte, or -1 at the end. */
int cps_json_skip_space(struct cps_json_cursor *c);

/* Skip blanks and then `byte`: 0, or -1 (cursor left at the blanks' end)
 * when the next byte is another one. */
int cps_json_take(struct cps_json_cursor *c, char byte);

/* Skip blanks and one whole value (a string, a literal, a number, or an
 * object or array with everything in it): 0, or -1 when the text ends
 * first or holds no value there. */
int cps_json_skip_value(struct cps_json_cursor *c);

/* Whether the string literal at the cursor (which must be at its opening
 * quote) stands for the len bytes of `s`, escapes decoded (\u with UTF-16
 * surrogate pairs as one UTF-8 character). 0 for anything else. */
int cps_json_string_is(const struct cps_json_cursor *c, const char *s, size_t len);

/*
 * Where the value at `path` (n_steps steps from the top-level value; none
 * is the top-level value itself) starts in text, or with at_key, where the
 * last step's key starts (its opening quote; the last step must then be a
 * key). One pass over the text, stopping there. 0 with *found set, or -1
 * when the path is not in the text (a missing key, an index past the end,
 * a value of another type on the way, or text that is not JSON). An object
 * with a key twice is searched to the first one (decide refuses
 * duplicates).
 */
int cps_json_locate(const char *text, size_t len, const struct cps_json_step *path,
                    size_t n_steps, int at_key, struct cps_json_cursor *found);

#endif
