package drnflow.jvm;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.avro.Schema;

/**
 * A fast path for {@link AvroEventDeserializer}: reads the fields attribution uses straight from the bytes of
 * the current writer schema and skips the rest (an impression's logged features are most of its bytes) without
 * Avro's resolving grammar, which costs a parser step per skipped float.
 *
 * <p>It only ever says yes to a value Avro's GenericDatumReader of the writer schema reads completely, and then
 * fills the event exactly as that path does. Skipped arrays are passed over item by item, as that reader (and
 * fastavro, schemas/serde.py) reads them: a block's byte size is read, never trusted. Avro's own skip jumps by
 * it, backwards for a negative one, and loops forever on a value whose byte size points back at its count. Anything unusual (a negative or large length or count, a bad union or enum
 * index, short or trailing bytes, a writer schema of a shape it does not know) is a "no": the caller then
 * takes the Avro path, which decides, so a malformed value fails with the same exception and dead-letter
 * detail as before. The limits below are far under Avro's (org.apache.avro.limits.*), so a value within them
 * is within Avro's too.
 */
final class FastEventDecoder {
    /** Strings longer than this, and collections with more items, go the Avro way. */
    private static final int MAX_STRING = 1 << 16;
    private static final long MAX_ITEMS = 1 << 16;

    private static final int NULL = 0;
    private static final int BOOLEAN = 1;
    private static final int INT = 2;
    private static final int LONG = 3;
    private static final int FLOAT = 4;
    private static final int DOUBLE = 5;
    private static final int STRING = 6;
    private static final int BYTES = 7;
    private static final int ARRAY = 8;
    private static final int UNION = 9;
    private static final int RECORD = 10;
    // Read (not skipped) fields of the event.
    private static final int F_REQUEST_ID = 20;
    private static final int F_EVENT_TIME = 21;
    private static final int F_MODEL_ID = 22;
    private static final int F_MODEL_VERSION = 23;
    private static final int F_EXPLORE_SEED = 24;
    private static final int F_SLOTS = 25;
    private static final int F_EXPLORE_SEEDS = 26;
    private static final int F_INTERLEAVING = 27;
    private static final int F_ITEM_ID = 28;
    // Slot fields.
    private static final int S_ITEM_ID = 30;
    private static final int S_TEAM = 31;
    private static final int S_EXPLORE_SEED = 32;

    /** A compiled writer type: what to do with one value of it. */
    private static final class Node {
        final int op;
        /** ARRAY: the items; UNION: the branches; RECORD: the fields. */
        final Node[] children;
        /** S_TEAM: the symbol count and the index of "EXPLORE" (-1: none); S_EXPLORE_SEED: the long branch. */
        final int a;
        final int b;

        Node(int op, Node[] children, int a, int b) {
            this.op = op;
            this.children = children;
            this.a = a;
            this.b = b;
        }
    }

    /** Thrown for any value the fast path will not vouch for (no stack trace: it is control flow). */
    static final class No extends Exception {
        private static final long serialVersionUID = 1L;
        static final No INSTANCE = new No();

        private No() {
            super(null, null, false, false);
        }
    }

    private final byte kind;
    private final Node[] top;

    private byte[] buf;
    private int pos;
    private int end;
    // Slots, reused from value to value; copied out to the event.
    private String[] itemIds = new String[16];
    private boolean[] explore = new boolean[16];
    private long[] slotSeeds = new long[16];
    private int nSlots;
    private long[] seeds = new long[4];
    private byte[] lastModelIdBytes;
    private String lastModelId;
    private int nSeeds;

    private FastEventDecoder(byte kind, Node[] top) {
        this.kind = kind;
        this.top = top;
    }

    /** The fast path for `writer`, or null when the schema has a shape it does not handle. */
    static FastEventDecoder forSchema(byte kind, Schema writer) {
        try {
            List<Node> fields = new ArrayList<>();
            int seen = 0;
            for (Schema.Field f : writer.getFields()) {
                int op = topField(kind, f.name());
                if (op < 0) {
                    fields.add(skipNode(f.schema()));
                    continue;
                }
                seen++;
                fields.add(readNode(op, f.schema()));
            }
            int want = kind == SourceEvent.IMPRESSION ? 8 : 3;
            return seen == want ? new FastEventDecoder(kind, fields.toArray(new Node[0])) : null;
        } catch (IllegalArgumentException unsupported) {
            return null;
        }
    }

    private static int topField(byte kind, String name) {
        switch (name) {
            case "request_id": return F_REQUEST_ID;
            case "event_time": return F_EVENT_TIME;
            default: break;
        }
        if (kind == SourceEvent.IMPRESSION) {
            switch (name) {
                case "model_id": return F_MODEL_ID;
                case "model_version": return F_MODEL_VERSION;
                case "explore_seed": return F_EXPLORE_SEED;
                case "slots": return F_SLOTS;
                case "explore_seeds": return F_EXPLORE_SEEDS;
                case "interleaving": return F_INTERLEAVING;
                default: return -1;
            }
        }
        return "item_id".equals(name) ? F_ITEM_ID : -1;
    }

    private static Node readNode(int op, Schema s) {
        switch (op) {
            case F_REQUEST_ID, F_MODEL_ID, F_INTERLEAVING, F_ITEM_ID -> require(s, Schema.Type.STRING);
            case F_EVENT_TIME, F_MODEL_VERSION, F_EXPLORE_SEED -> require(s, Schema.Type.LONG);
            case F_EXPLORE_SEEDS -> {
                require(s, Schema.Type.ARRAY);
                require(s.getElementType(), Schema.Type.LONG);
            }
            case F_SLOTS -> {
                require(s, Schema.Type.ARRAY);
                Schema slot = s.getElementType();
                require(slot, Schema.Type.RECORD);
                List<Node> fields = new ArrayList<>();
                int seen = 0;
                for (Schema.Field f : slot.getFields()) {
                    switch (f.name()) {
                        case "item_id" -> {
                            require(f.schema(), Schema.Type.STRING);
                            fields.add(new Node(S_ITEM_ID, null, 0, 0));
                            seen++;
                        }
                        case "team" -> {
                            require(f.schema(), Schema.Type.ENUM);
                            List<String> symbols = f.schema().getEnumSymbols();
                            fields.add(new Node(S_TEAM, null, symbols.size(), symbols.indexOf("EXPLORE")));
                            seen++;
                        }
                        case "explore_seed" -> {
                            require(f.schema(), Schema.Type.UNION);
                            List<Schema> branches = f.schema().getTypes();
                            if (branches.size() != 2) {
                                throw new IllegalArgumentException("explore_seed: not [null, long]");
                            }
                            int longBranch = branches.get(0).getType() == Schema.Type.LONG ? 0 : 1;
                            require(branches.get(longBranch), Schema.Type.LONG);
                            require(branches.get(1 - longBranch), Schema.Type.NULL);
                            fields.add(new Node(S_EXPLORE_SEED, null, 2, longBranch));
                            seen++;
                        }
                        default -> fields.add(skipNode(f.schema()));
                    }
                }
                if (seen != 3) {
                    throw new IllegalArgumentException("slot fields missing");
                }
                return new Node(op, fields.toArray(new Node[0]), 0, 0);
            }
            default -> throw new IllegalArgumentException("unknown field op " + op);
        }
        return new Node(op, null, 0, 0);
    }

    private static void require(Schema s, Schema.Type type) {
        if (s.getType() != type) {
            throw new IllegalArgumentException(s + " is not " + type);
        }
    }

    /** How a value of `s` the event does not need is passed over; enums, maps and fixed are unsupported. */
    private static Node skipNode(Schema s) {
        return switch (s.getType()) {
            case NULL -> new Node(NULL, null, 0, 0);
            case BOOLEAN -> new Node(BOOLEAN, null, 0, 0);
            case INT -> new Node(INT, null, 0, 0);
            case LONG -> new Node(LONG, null, 0, 0);
            case FLOAT -> new Node(FLOAT, null, 0, 0);
            case DOUBLE -> new Node(DOUBLE, null, 0, 0);
            case STRING -> new Node(STRING, null, 0, 0);
            case BYTES -> new Node(BYTES, null, 0, 0);
            case ARRAY -> new Node(ARRAY, new Node[] {skipNode(s.getElementType())}, 0, 0);
            case UNION -> {
                Node[] branches = new Node[s.getTypes().size()];
                for (int i = 0; i < branches.length; i++) {
                    branches[i] = skipNode(s.getTypes().get(i));
                }
                yield new Node(UNION, branches, 0, 0);
            }
            case RECORD -> {
                Node[] fields = new Node[s.getFields().size()];
                for (int i = 0; i < fields.length; i++) {
                    fields[i] = skipNode(s.getFields().get(i).schema());
                }
                yield new Node(RECORD, fields, 0, 0);
            }
            default -> throw new IllegalArgumentException("no fast skip of " + s.getType());  // enum, map, fixed
        };
    }

    /**
     * Fills `e` from `value` as the Avro path would, or throws {@link No} (then `e`'s decoded fields may be
     * half set: the Avro path sets them all again).
     */
    void decode(byte[] value, SourceEvent e) throws No {
        buf = value;
        pos = 0;
        end = value.length;
        nSlots = 0;
        nSeeds = 0;
        for (Node n : top) {
            switch (n.op) {
                case F_REQUEST_ID -> e.requestId = readString();
                case F_EVENT_TIME -> e.eventTime = readLong();
                case F_MODEL_ID -> e.modelId = readModelId();
                case F_MODEL_VERSION -> e.modelVersion = readLong();
                case F_EXPLORE_SEED -> e.exploreSeed = readLong();
                case F_INTERLEAVING -> e.pdgd = "pdgd".equals(readString());
                case F_ITEM_ID -> e.itemId = readString();
                case F_SLOTS -> readSlots(n.children);
                case F_EXPLORE_SEEDS -> readSeeds();
                default -> skip(n);
            }
        }
        if (pos != end) {
            throw No.INSTANCE;
        }
        buf = null;
        e.kind = kind;
        if (kind != SourceEvent.IMPRESSION) {
            return;
        }
        e.itemIds = java.util.Arrays.copyOf(itemIds, nSlots);
        e.explore = java.util.Arrays.copyOf(explore, nSlots);
        e.slotSeeds = java.util.Arrays.copyOf(slotSeeds, nSlots);
        // As the Avro path: distinct seeds in first-occurrence order; a team per seed only when more than one.
        int distinct = 0;
        for (int i = 0; i < nSeeds; i++) {
            long s = seeds[i];
            boolean dup = false;
            for (int j = 0; j < distinct; j++) {
                if (seeds[j] == s) {
                    dup = true;
                    break;
                }
            }
            if (!dup) {
                seeds[distinct++] = s;
            }
        }
        e.exploreSeeds = distinct > 1 ? java.util.Arrays.copyOf(seeds, distinct) : null;
    }

    private void readSlots(Node[] fields) throws No {
        long total = 0;
        for (long c = itemCount(); c != 0; c = itemCount()) {
            total += c;
            if (total > MAX_ITEMS) {
                throw No.INSTANCE;
            }
            for (long k = 0; k < c; k++) {
                if (nSlots == itemIds.length) {
                    itemIds = java.util.Arrays.copyOf(itemIds, 2 * nSlots);
                    explore = java.util.Arrays.copyOf(explore, 2 * nSlots);
                    slotSeeds = java.util.Arrays.copyOf(slotSeeds, 2 * nSlots);
                }
                int i = nSlots++;
                slotSeeds[i] = -1L;
                for (Node f : fields) {
                    switch (f.op) {
                        case S_ITEM_ID -> itemIds[i] = readString();
                        case S_TEAM -> {
                            int t = readInt();
                            if (t < 0 || t >= f.a) {
                                throw No.INSTANCE;
                            }
                            explore[i] = t == f.b;
                        }
                        case S_EXPLORE_SEED -> {
                            int branch = readInt();
                            if (branch < 0 || branch >= f.a) {
                                throw No.INSTANCE;
                            }
                            slotSeeds[i] = branch == f.b ? readLong() : -1L;
                        }
                        default -> skip(f);
                    }
                }
            }
        }
    }

    private void readSeeds() throws No {
        long total = 0;
        for (long c = itemCount(); c != 0; c = itemCount()) {
            total += c;
            if (total > MAX_ITEMS) {
                throw No.INSTANCE;
            }
            for (long k = 0; k < c; k++) {
                if (nSeeds == seeds.length) {
                    seeds = java.util.Arrays.copyOf(seeds, 2 * nSeeds);
                }
                seeds[nSeeds++] = readLong();
            }
        }
    }

    /** A block's item count as Avro reads an array it materialises (a negative count has a byte size). */
    private long itemCount() throws No {
        long c = readLong();
        if (c < 0) {
            readLong();
            c = -c;
            if (c < 0) {
                throw No.INSTANCE;
            }
        }
        return c;
    }

    private void skip(Node n) throws No {
        switch (n.op) {
            case NULL -> { }
            case BOOLEAN, FLOAT -> skipBytes(n.op == BOOLEAN ? 1 : 4);
            case DOUBLE -> skipBytes(8);
            case INT -> readInt();
            case LONG -> readLong();
            case STRING, BYTES -> skipBytes(length());
            case UNION -> {
                int branch = readInt();
                if (branch < 0 || branch >= n.children.length) {
                    throw No.INSTANCE;
                }
                skip(n.children[branch]);
            }
            case RECORD -> {
                for (Node f : n.children) {
                    skip(f);
                }
            }
            case ARRAY -> {
                Node items = n.children[0];
                for (long c = itemCount(); c != 0; c = itemCount()) {
                    if (c > end - pos) {
                        throw No.INSTANCE;  // every item here takes at least a byte, or Avro would loop on
                    }
                    if (items.op == FLOAT) {
                        skipBytes(4L * c);
                    } else if (items.op == DOUBLE) {
                        skipBytes(8L * c);
                    } else {
                        for (long k = 0; k < c; k++) {
                            skip(items);
                        }
                    }
                }
            }
            default -> throw No.INSTANCE;
        }
    }

    private void skipBytes(long n) throws No {
        if (n < 0 || n > end - pos) {
            throw No.INSTANCE;
        }
        pos += (int) n;
    }

    private int length() throws No {
        long n = readLong();
        if (n < 0 || n > MAX_STRING) {
            throw No.INSTANCE;
        }
        return (int) n;
    }

    private String readString() throws No {
        int n = length();
        if (n > end - pos) {
            throw No.INSTANCE;
        }
        String s = n == 0 ? "" : new String(buf, pos, n, StandardCharsets.UTF_8);
        pos += n;
        return s;
    }

    /**
     * As {@link #readString}, but the previous value's String when the bytes are the same: a stream has few
     * model ids, and one instance keeps its hash code (the partial counts are keyed by it).
     */
    private String readModelId() throws No {
        int n = length();
        if (n > end - pos) {
            throw No.INSTANCE;
        }
        if (lastModelId == null || !java.util.Arrays.equals(buf, pos, pos + n, lastModelIdBytes, 0, lastModelIdBytes.length)) {
            lastModelIdBytes = java.util.Arrays.copyOfRange(buf, pos, pos + n);
            lastModelId = new String(lastModelIdBytes, StandardCharsets.UTF_8);
        }
        pos += n;
        return lastModelId;
    }

    /** Avro's zig-zag varint int: at most 5 bytes (more is an error there too). */
    private int readInt() throws No {
        int n = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            if (pos >= end) {
                throw No.INSTANCE;
            }
            int b = buf[pos++] & 0xff;
            n |= (b & 0x7f) << shift;
            if (b < 0x80) {
                return (n >>> 1) ^ -(n & 1);
            }
        }
        throw No.INSTANCE;
    }

    /** Avro's zig-zag varint long: at most 10 bytes. */
    private long readLong() throws No {
        long n = 0;
        for (int shift = 0; shift < 70; shift += 7) {
            if (pos >= end) {
                throw No.INSTANCE;
            }
            int b = buf[pos++] & 0xff;
            n |= ((long) (b & 0x7f)) << shift;
            if (b < 0x80) {
                return (n >>> 1) ^ -(n & 1);
            }
        }
        throw No.INSTANCE;
    }
}
