package drnflow.jvm;

import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.util.Collector;

/**
 * Decodes plain-Avro Impression or Click values (no registry framing) into {@link SourceEvent}s.
 *
 * <p>Decode failures are data, not exceptions: a value that is not a complete record of the schema
 * (garbage, truncated, trailing bytes, a tombstone) comes out as a MALFORMED event with its origin,
 * so it can go to dead-letters. {@link FastEventDecoder} reads the fields attribution needs and passes over
 * the logged features (most of an impression's bytes); a value it does not vouch for is read whole by Avro.
 * Whole, not through a projection: Avro skips a projected-away array by its blocks' byte sizes, and a
 * negative one sends its decoder backwards, for ever (one hostile record would hang the job's source).
 *
 * <p>Values carry no writer schema. Bytes the previous release wrote (schemas/previous, handed over when it
 * differs) are read with it when the current schema cannot read them: fields are only appended, with
 * defaults, so at most one of the two reads a complete record (schemas/serde.py decodes the same way).
 */
public final class AvroEventDeserializer implements KafkaRecordDeserializationSchema<SourceEvent> {
    private static final long serialVersionUID = 1L;

    static {
        // Garbage can announce a 2 GiB string or array; cap what Avro will allocate for one value.
        setIfAbsent("org.apache.avro.limits.string.maxLength", "16777216");
        setIfAbsent("org.apache.avro.limits.bytes.maxLength", "16777216");
        setIfAbsent("org.apache.avro.limits.collectionItems.maxLength", "4194304");
    }

    /** Event times must be epoch milliseconds in [1840-01-01, 2100-01-01) (design.md §3, schemas/records.py). */
    static final long MAX_EVENT_TIME_MS = 4_102_444_800_000L;
    static final long MIN_EVENT_TIME_MS = -MAX_EVENT_TIME_MS;

    private final byte kind;
    private final String writerSchemaJson;
    /** The previous release's writer schema ("" when it is the current one). */
    private final String previousSchemaJson;
    /** An event_time further than this ahead of the record's Kafka timestamp is OUT_OF_RANGE (<= 0: off). */
    private final long maxSkewMs;

    private transient GenericDatumReader<GenericRecord> reader;
    private transient GenericDatumReader<GenericRecord> previousReader;
    private transient BinaryDecoder decoder;
    private transient GenericRecord reuse;
    /** Reads the current schema's values without Avro's resolving grammar (null: always the Avro path). */
    private transient FastEventDecoder fast;
    private transient int fRequestId;
    private transient int fEventTime;
    private transient int fModelId;
    private transient int fModelVersion;
    private transient int fExploreSeed;
    private transient int fSlots;
    private transient int fExploreSeeds;
    private transient int fInterleaving;
    private transient int fItemId;

    private AvroEventDeserializer(byte kind, String writerSchemaJson, String previousSchemaJson, long maxSkewMs) {
        this.kind = kind;
        this.writerSchemaJson = writerSchemaJson;
        this.previousSchemaJson = previousSchemaJson;
        this.maxSkewMs = maxSkewMs;
    }

    public static AvroEventDeserializer impressions(String impressionSchemaJson, String previousSchemaJson,
            long maxSkewMs) {
        return new AvroEventDeserializer(SourceEvent.IMPRESSION, impressionSchemaJson, previousSchemaJson, maxSkewMs);
    }

    public static AvroEventDeserializer clicks(String clickSchemaJson, long maxSkewMs) {
        return new AvroEventDeserializer(SourceEvent.CLICK, clickSchemaJson, "", maxSkewMs);
    }

    private static void setIfAbsent(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    @Override
    public void open(DeserializationSchema.InitializationContext context) {
        Schema writer = new Schema.Parser().parse(writerSchemaJson);
        fast = FastEventDecoder.forSchema(kind, writer);
        reader = new GenericDatumReader<>(writer, writer);
        Schema previous = previousSchemaJson.isEmpty() ? null : new Schema.Parser().parse(previousSchemaJson);
        previousReader = previous == null ? null : new GenericDatumReader<>(previous, writer);
        fRequestId = writer.getField("request_id").pos();
        fEventTime = writer.getField("event_time").pos();
        if (kind == SourceEvent.IMPRESSION) {
            fModelId = writer.getField("model_id").pos();
            fModelVersion = writer.getField("model_version").pos();
            fExploreSeed = writer.getField("explore_seed").pos();
            fSlots = writer.getField("slots").pos();
            fExploreSeeds = writer.getField("explore_seeds").pos();
            fInterleaving = writer.getField("interleaving").pos();
        } else {
            fItemId = writer.getField("item_id").pos();
        }
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<SourceEvent> out) {
        SourceEvent e = new SourceEvent();
        e.topic = record.topic();
        e.partition = record.partition();
        e.offset = record.offset();
        e.rawKey = record.key();
        e.rawValue = record.value();
        try {
            decodeInto(e);
            String problem = problem(e);
            String skew = problem == null ? skewProblem(e.eventTime, record.timestamp(), maxSkewMs) : null;
            if (problem != null) {
                malformed(e, "invalid " + e.topic + " record: " + problem);
            } else if (skew != null) {
                malformed(e, skew);
                e.reason = DeadLetterRecord.OUT_OF_RANGE;
            }
        } catch (Exception | StackOverflowError | OutOfMemoryError ex) {
            reuse = null;
            malformed(e, "cannot decode " + e.topic + " value as Avro: " + ex.getClass().getSimpleName() + ": "
                    + ex.getMessage());
        }
        out.collect(e);
    }

    private static void malformed(SourceEvent e, String detail) {
        e.kind = SourceEvent.MALFORMED;
        e.detail = detail;
        e.itemIds = null;
        e.explore = null;
        e.slotSeeds = null;
        e.exploreSeeds = null;
    }

    /**
     * Why a decoded record cannot be used, or null. One such record used to crash the job (an event time
     * near Long.MIN/MAX wrapped the window arithmetic; a negative explore seed broke the explore network)
     * or to corrupt later traffic (an event time in microseconds pushed the watermark 50,000 years ahead).
     */
    static String problem(SourceEvent e) {
        if (e.eventTime < MIN_EVENT_TIME_MS || e.eventTime >= MAX_EVENT_TIME_MS) {
            return "event_time " + e.eventTime + " is outside [" + MIN_EVENT_TIME_MS + ", " + MAX_EVENT_TIME_MS
                    + ") ms (1840..2100); is it in epoch milliseconds?";
        }
        if (e.kind == SourceEvent.IMPRESSION && e.exploreSeed < 0) {
            return "explore_seed " + e.exploreSeed + " is negative; explore seeds are non-negative";
        }
        if (e.kind == SourceEvent.IMPRESSION && e.exploreSeeds != null) {
            for (long seed : e.exploreSeeds) {
                if (seed < 0) {
                    return "explore_seeds holds " + seed + "; explore seeds are non-negative";
                }
            }
        }
        return null;
    }

    /**
     * Why an event time is too far ahead to be believed, or null: more than `maxSkewMs` after the record's
     * Kafka timestamp (producer create time or broker append time, both stored with the record, so the
     * decision is the same on every replay). Such a record never reaches the watermark: one wrongly stamped
     * record would otherwise make every later valid one LATE (schemas/records.py holds the same rule).
     */
    static String skewProblem(long eventTime, long kafkaTimestamp, long maxSkewMs) {
        if (maxSkewMs <= 0 || kafkaTimestamp < 0 || eventTime - kafkaTimestamp <= maxSkewMs) {
            return null;
        }
        return "event_time " + eventTime + " is " + (eventTime - kafkaTimestamp) + " ms ahead of the record's Kafka "
                + "timestamp " + kafkaTimestamp + "; the job's max event-time skew is " + maxSkewMs + " ms";
    }

    private void decodeInto(SourceEvent e) throws Exception {
        byte[] value = e.rawValue;
        if (value == null) {
            throw new IllegalArgumentException("null value (tombstone) where a record was expected");
        }
        if (fast != null) {
            try {
                fast.decode(value, e);
                return;
            } catch (FastEventDecoder.No no) {
                // Not a value the fast path vouches for: Avro decides, and fails as it always did.
                e.requestId = null;
                e.eventTime = 0;
                e.modelId = null;
                e.modelVersion = 0;
                e.exploreSeed = 0;
                e.pdgd = false;
                e.itemId = null;
            }
        }
        decodeGeneric(e, value);
    }

    /** The Avro path: GenericDatumReader of the current schema, else of the previous release's. */
    void decodeGeneric(SourceEvent e, byte[] value) throws Exception {
        GenericRecord r;
        try {
            r = read(reader, value);
        } catch (Exception | StackOverflowError current) {
            if (previousReader == null) {
                throw current;
            }
            try {
                r = read(previousReader, value);
            } catch (Exception | StackOverflowError previous) {
                throw current;
            }
        }
        e.kind = kind;
        e.requestId = r.get(fRequestId).toString();
        e.eventTime = (Long) r.get(fEventTime);
        if (kind == SourceEvent.IMPRESSION) {
            e.modelId = r.get(fModelId).toString();
            e.modelVersion = (Long) r.get(fModelVersion);
            e.exploreSeed = (Long) r.get(fExploreSeed);
            @SuppressWarnings("unchecked")
            GenericData.Array<GenericRecord> slots = (GenericData.Array<GenericRecord>) r.get(fSlots);
            int n = slots.size();
            e.itemIds = new String[n];
            e.explore = new boolean[n];
            e.slotSeeds = new long[n];
            for (int i = 0; i < n; i++) {
                GenericRecord s = slots.get(i);
                e.itemIds[i] = s.get("item_id").toString();
                e.explore[i] = "EXPLORE".equals(s.get("team").toString());
                Object seed = s.get("explore_seed");
                e.slotSeeds[i] = seed == null ? -1L : (Long) seed;
            }
            @SuppressWarnings("unchecked")
            List<Long> seeds = (List<Long>) r.get(fExploreSeeds);
            // One team per seed only when multileaving (design.md §4); otherwise the impression's explore_seed.
            // A seed listed twice is one team (first occurrence order), as in models/interleave.seed_outcomes.
            java.util.LinkedHashSet<Long> distinct = seeds == null ? new java.util.LinkedHashSet<>()
                    : new java.util.LinkedHashSet<>(seeds);
            if (distinct.size() > 1) {
                e.exploreSeeds = new long[distinct.size()];
                int i = 0;
                for (long seed : distinct) {
                    e.exploreSeeds[i++] = seed;
                }
            } else {
                e.exploreSeeds = null;
            }
            e.pdgd = "pdgd".equals(r.get(fInterleaving).toString());
        } else {
            e.itemId = r.get(fItemId).toString();
        }
    }

    /** Test hook: the fast path off (null) or on, to compare the two. */
    void useFastPath(boolean on) {
        fast = on ? FastEventDecoder.forSchema(kind, new Schema.Parser().parse(writerSchemaJson)) : null;
    }

    /** One complete record of `with`'s writer schema, or an exception (bad, short or trailing bytes). */
    private GenericRecord read(GenericDatumReader<GenericRecord> with, byte[] value) throws Exception {
        decoder = DecoderFactory.get().binaryDecoder(value, decoder);
        GenericRecord r;
        try {
            r = with.read(reuse, decoder);
        } catch (Exception | StackOverflowError ex) {
            reuse = null;
            throw ex;
        }
        reuse = r;
        if (!decoder.isEnd()) {
            throw new IllegalArgumentException("trailing bytes after a complete record");
        }
        return r;
    }

    @Override
    public TypeInformation<SourceEvent> getProducedType() {
        return TypeInformation.of(SourceEvent.class);
    }
}
