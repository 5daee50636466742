/*
 * Positions in JSON text: a cursor that steps over the text counting lines
 * and columns, and the path lookup built on it. The contract is in
 * json_pos.h.
 */
#include "json_pos.h"

#include <limits.h>
#include <string.h>

#define UTF8_BOM "\xef\xbb\xbf"
#define UTF8_BOM_LEN 3

/* Step over one byte. A column is counted on a character's first byte
 * (anything but a UTF-8 continuation byte 10xxxxxx), so the cursor's col
 * is the column of the character that starts at `at`. */
static void advance(struct cps_json_cursor *c)
{
    if (c->at >= c->len)
        return;
    unsigned char b = (unsigned char)c->text[c->at++];
    if (b == '\n') {
        c->line += c->line < INT_MAX;
        c->col = 1;
    } else if ((b & 0xC0) != 0x80) {
        c->col += c->col < INT_MAX;
    }
}

void cps_json_cursor_init(struct cps_json_cursor *c, const char *text, size_t len)
{
    c->text = text;
    c->len = text ? len : 0;
    c->at = 0;
    c->line = 1;
    c->col = 1;
    if (c->len >= UTF8_BOM_LEN && memcmp(text, UTF8_BOM, UTF8_BOM_LEN) == 0)
        for (int i = 0; i < UTF8_BOM_LEN; i++)
            advance(c); /* one lead byte, two continuation bytes: one column */
}

/* The blanks JSON allows between tokens. */
static int is_blank(char b)
{
    return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

int cps_json_skip_space(struct cps_json_cursor *c)
{
    while (c->at < c->len && is_blank(c->text[c->at]))
        advance(c);
    return c->at < c->len ? (unsigned char)c->text[c->at] : -1;
}

int cps_json_take(struct cps_json_cursor *c, char byte)
{
    if (cps_json_skip_space(c) != (unsigned char)byte)
        return -1;
    advance(c);
    return 0;
}

/* Past the string literal whose opening quote is at the cursor: 0, or -1
 * when the text ends inside it. An escape's backslash takes the next byte
 * with it, so \" does not end the string; \uXXXX needs nothing more (its
 * hex digits are never a quote or a backslash). */
static int skip_string(struct cps_json_cursor *c)
{
    advance(c); /* the opening quote */
    while (c->at < c->len) {
        char b = c->text[c->at];
        advance(c);
        if (b == '"')
            return 0;
        if (b == '\\') {
            if (c->at >= c->len)
                return -1;
            advance(c);
        }
    }
    return -1;
}

/* Whether `b` ends a literal or number: a blank or a structural byte. */
static int ends_token(char b)
{
    return is_blank(b) || (b != '\0' && strchr(",:[]{}\"", b) != NULL);
}

int cps_json_skip_value(struct cps_json_cursor *c)
{
    int first = cps_json_skip_space(c);
    if (first < 0 || first == ',' || first == ':' || first == ']' || first == '}')
        return -1;
    if (first == '"')
        return skip_string(c);
    if (first != '{' && first != '[') {
        /* true, false, null or a number: the bytes up to a delimiter */
        while (c->at < c->len && !ends_token(c->text[c->at]))
            advance(c);
        return 0;
    }
    /* an object or array: count brackets (strings skipped whole, so a
     * bracket inside one does not count) until the first one closes */
    size_t depth = 0;
    while (c->at < c->len) {
        char b = c->text[c->at];
        if (b == '"') {
            if (skip_string(c) < 0)
                return -1;
            continue;
        }
        advance(c);
        if (b == '{' || b == '[')
            depth++;
        else if ((b == '}' || b == ']') && --depth == 0)
            return 0;
    }
    return -1;
}

/* The value of the hex digit b, or -1. */
static int hex_digit(char b)
{
    if (b >= '0' && b <= '9')
        return b - '0';
    if (b >= 'a' && b <= 'f')
        return b - 'a' + 10;
    if (b >= 'A' && b <= 'F')
        return b - 'A' + 10;
    return -1;
}

/* The four hex digits at text[i..i+4) as a number, or -1 (too few bytes
 * left, or not hex). */
static long hex4(const char *text, size_t len, size_t i)
{
    if (len < 4 || i > len - 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int d = hex_digit(text[i + k]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A code point (at most U+10FFFF) as UTF-8 into out: the byte count. */
static size_t utf8_encode(unsigned long cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * The escape whose letter is at text[*i] (just past the backslash) as the
 * bytes it stands for, into out: their count, with *i past the escape; 0
 * for an escape JSON does not have (or one cut short by the end of the
 * text). \uD800-\uDBFF must be followed by \uDC00-\uDFFF: the pair is one
 * character; a lone surrogate is not a character and decodes to nothing.
 */
static size_t decode_escape(const char *text, size_t len, size_t *i, unsigned char out[4])
{
    static const char simple[] = "\"\\/bfnrt", meant[] = "\"\\/\b\f\n\r\t";
    if (*i >= len)
        return 0;
    char letter = text[(*i)++];
    const char *which = letter ? strchr(simple, letter) : NULL;
    if (which) {
        out[0] = (unsigned char)meant[which - simple];
        return 1;
    }
    if (letter != 'u')
        return 0;
    long cp = hex4(text, len, *i);
    if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return 0;
    *i += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        long low = *i + 2 <= len && text[*i] == '\\' && text[*i + 1] == 'u'
                       ? hex4(text, len, *i + 2) : -1;
        if (low < 0xDC00 || low > 0xDFFF)
            return 0;
        *i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    return utf8_encode((unsigned long)cp, out);
}

int cps_json_string_is(const struct cps_json_cursor *c, const char *s, size_t len)
{
    size_t i = c->at, k = 0;
    if (i >= c->len || c->text[i] != '"')
        return 0;
    i++;
    while (i < c->len) {
        unsigned char bytes[4];
        size_t n = 1;
        char b = c->text[i++];
        if (b == '"')
            return k == len;
        if (b == '\\') {
            if ((n = decode_escape(c->text, c->len, &i, bytes)) == 0)
                return 0;
        } else {
            bytes[0] = (unsigned char)b;
        }
        if (n > len - k || memcmp(s + k, bytes, n) != 0)
            return 0;
        k += n;
    }
    return 0; /* the text ends inside the string */
}

/* From an object's '{' at the cursor, to the value of its member `key`
 * (or, with at_key, to the key itself). 0, or -1 when there is none. */
static int find_member(struct cps_json_cursor *c, const char *key, int at_key)
{
    size_t key_len = strlen(key);
    if (cps_json_take(c, '{') < 0)
        return -1;
    for (;;) {
        if (cps_json_skip_space(c) != '"')
            return -1; /* '}': not there (or not JSON) */
        struct cps_json_cursor key_start = *c;
        int match = cps_json_string_is(c, key, key_len);
        if (cps_json_skip_value(c) < 0 || cps_json_take(c, ':') < 0)
            return -1;
        if (match) {
            if (at_key)
                *c = key_start;
            return 0;
        }
        if (cps_json_skip_value(c) < 0 || cps_json_take(c, ',') < 0)
            return -1;
    }
}

/* From an array's '[' at the cursor, to its element `index`. 0, or -1
 * when the array is shorter. */
static int find_element(struct cps_json_cursor *c, size_t index)
{
    if (cps_json_take(c, '[') < 0)
        return -1;
    for (size_t i = 0; i < index; i++)
        if (cps_json_skip_value(c) < 0 || cps_json_take(c, ',') < 0)
            return -1;
    return 0;
}

/*
 * The path is followed down the text in one pass: at each step the cursor
 * is at the '{' or '[' of the value the previous steps lead to, and skips
 * whole values (members whose key is another, elements before the index)
 * until it reaches the next one. Nothing before the match is decoded but
 * the keys compared on the way.
 */
int cps_json_locate(const char *text, size_t len, const struct cps_json_step *path,
                    size_t n_steps, int at_key, struct cps_json_cursor *found)
{
    struct cps_json_cursor c;
    cps_json_cursor_init(&c, text, len);
    for (size_t s = 0; s < n_steps; s++) {
        int last_key = at_key && s + 1 == n_steps;
        if (path[s].key ? find_member(&c, path[s].key, last_key) < 0
                        : last_key || find_element(&c, path[s].index) < 0)
            return -1;
    }
    /* a value starts here (not the ']' of an empty array, not the end) */
    int next = cps_json_skip_space(&c);
    if (next < 0 || (!at_key && (next == ',' || next == ':' || next == ']' || next == '}')))
        return -1;
    *found = c;
    return 0;
}
