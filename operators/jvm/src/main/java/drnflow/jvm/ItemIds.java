package drnflow.jvm;

/**
 * Item ids packed into one byte[] for the compact attribution state ({@link RequestState#itemBytes}): per id its
 * UTF-8 length as an unsigned varint, then the UTF-8 bytes. On the heap that is one array of about
 * 16 + n·(1 + len) bytes where a String[] of n Strings is 16 + 4n + n·(24 + 16 + len), rounded up per object.
 * A click is matched against the bytes without decoding them or encoding the click's id (no allocation).
 */
final class ItemIds {
    private ItemIds() {}

    /**
     * The packed form of `ids`, or null when some id has no lossless UTF-8 form (an unpaired surrogate, which a
     * String decoded from UTF-8 never holds): such ids stay Strings, so equality is never weakened.
     */
    static byte[] pack(String[] ids) {
        int total = 0;
        for (String id : ids) {
            int n = utf8Length(id);
            if (n < 0) {
                return null;
            }
            total += varintLength(n) + n;
        }
        byte[] out = new byte[total];
        int p = 0;
        for (String id : ids) {
            int n = utf8Length(id);
            while (n >= 0x80) {
                out[p++] = (byte) (n | 0x80);
                n >>>= 7;
            }
            out[p++] = (byte) n;
            p = encode(id, out, p);
        }
        return out;
    }

    /** The slot of `id` in `packed` (the first, as String[] order), or -1 if it is not there. */
    static int slotOf(byte[] packed, String id) {
        int p = 0;
        for (int slot = 0; p < packed.length; slot++) {
            int n = 0;
            for (int shift = 0; ; shift += 7) {
                int b = packed[p++];
                n |= (b & 0x7f) << shift;
                if (b >= 0) {
                    break;
                }
            }
            if (utf8Equals(packed, p, n, id)) {
                return slot;
            }
            p += n;
        }
        return -1;
    }

    /** Whether `b[off, off + len)` is exactly the UTF-8 encoding of `s` (false if `s` has no lossless one). */
    static boolean utf8Equals(byte[] b, int off, int len, String s) {
        int n = s.length();
        if (len < n || len > 3 * n) {  // each char is 1-3 bytes (a surrogate pair: 4 bytes for 2 chars)
            return false;
        }
        int p = off;
        int end = off + len;
        for (int i = 0; i < n; i++) {
            char ch = s.charAt(i);
            if (ch < 0x80) {
                if (p >= end || b[p] != (byte) ch) {
                    return false;
                }
                p += 1;
            } else if (ch < 0x800) {
                if (end - p < 2 || b[p] != (byte) (0xc0 | (ch >> 6)) || b[p + 1] != (byte) (0x80 | (ch & 0x3f))) {
                    return false;
                }
                p += 2;
            } else if (Character.isSurrogate(ch)) {
                if (!Character.isHighSurrogate(ch) || i + 1 >= n || !Character.isLowSurrogate(s.charAt(i + 1))) {
                    return false;
                }
                int cp = Character.toCodePoint(ch, s.charAt(++i));
                if (end - p < 4 || b[p] != (byte) (0xf0 | (cp >> 18)) || b[p + 1] != (byte) (0x80 | ((cp >> 12) & 0x3f))
                        || b[p + 2] != (byte) (0x80 | ((cp >> 6) & 0x3f)) || b[p + 3] != (byte) (0x80 | (cp & 0x3f))) {
                    return false;
                }
                p += 4;
            } else {
                if (end - p < 3 || b[p] != (byte) (0xe0 | (ch >> 12)) || b[p + 1] != (byte) (0x80 | ((ch >> 6) & 0x3f))
                        || b[p + 2] != (byte) (0x80 | (ch & 0x3f))) {
                    return false;
                }
                p += 3;
            }
        }
        return p == end;
    }

    /** UTF-8 length of `s`, or -1 if it holds an unpaired surrogate. */
    static int utf8Length(String s) {
        int len = 0;
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char ch = s.charAt(i);
            if (ch < 0x80) {
                len += 1;
            } else if (ch < 0x800) {
                len += 2;
            } else if (Character.isSurrogate(ch)) {
                if (!Character.isHighSurrogate(ch) || i + 1 >= n || !Character.isLowSurrogate(s.charAt(i + 1))) {
                    return -1;
                }
                i++;
                len += 4;
            } else {
                len += 3;
            }
        }
        return len;
    }

    private static int varintLength(int n) {
        int k = 1;
        while (n >= 0x80) {
            n >>>= 7;
            k++;
        }
        return k;
    }

    /** Writes the UTF-8 of `s` (no unpaired surrogates) at `p`; returns the position after it. */
    private static int encode(String s, byte[] out, int p) {
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char ch = s.charAt(i);
            if (ch < 0x80) {
                out[p++] = (byte) ch;
            } else if (ch < 0x800) {
                out[p++] = (byte) (0xc0 | (ch >> 6));
                out[p++] = (byte) (0x80 | (ch & 0x3f));
            } else if (Character.isHighSurrogate(ch)) {
                int cp = Character.toCodePoint(ch, s.charAt(++i));
                out[p++] = (byte) (0xf0 | (cp >> 18));
                out[p++] = (byte) (0x80 | ((cp >> 12) & 0x3f));
                out[p++] = (byte) (0x80 | ((cp >> 6) & 0x3f));
                out[p++] = (byte) (0x80 | (cp & 0x3f));
            } else {
                out[p++] = (byte) (0xe0 | (ch >> 12));
                out[p++] = (byte) (0x80 | ((ch >> 6) & 0x3f));
                out[p++] = (byte) (0x80 | (ch & 0x3f));
            }
        }
        return p;
    }
}
