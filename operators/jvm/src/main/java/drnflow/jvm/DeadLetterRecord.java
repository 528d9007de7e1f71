package drnflow.jvm;

/** A record the job could not use, with its raw bytes, origin and a reason code (schemas/dead_letter.avsc). */
public class DeadLetterRecord {
    public static final String MALFORMED = "MALFORMED";
    public static final String UNKNOWN_REQUEST = "UNKNOWN_REQUEST";
    public static final String ITEM_NOT_SHOWN = "ITEM_NOT_SHOWN";
    public static final String OUTSIDE_WINDOW = "OUTSIDE_WINDOW";
    public static final String DUPLICATE = "DUPLICATE";
    public static final String DUPLICATE_IMPRESSION = "DUPLICATE_IMPRESSION";
    /** The record's window was already final (watermark past window end + attribution window) on arrival. */
    public static final String LATE = "LATE";
    /** event_time is further ahead of the record's Kafka timestamp than the job's max event-time skew. */
    public static final String OUT_OF_RANGE = "OUT_OF_RANGE";

    public String sourceTopic;
    public int sourcePartition;
    public long sourceOffset;
    public byte[] rawKey;
    public byte[] rawValue;
    public String reason;
    public String detail;

    public DeadLetterRecord() {}

    static DeadLetterRecord of(SourceEvent e, String reason, String detail) {
        DeadLetterRecord d = new DeadLetterRecord();
        d.sourceTopic = e.topic;
        d.sourcePartition = e.partition;
        d.sourceOffset = e.offset;
        d.rawKey = e.rawKey;
        d.rawValue = e.rawValue;
        d.reason = reason;
        d.detail = detail;
        return d;
    }
}
