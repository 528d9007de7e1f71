package drnflow.jvm;

/**
 * One decoded Kafka record of the impressions or clicks topic, or a record that could not be decoded
 * (MALFORMED). Only the fields attribution needs are kept; where it came from travels along so any
 * record can still become a dead letter with its raw bytes.
 *
 * <p>A Flink POJO (public fields, no-arg constructor) so it is serialized without Kryo.
 */
public class SourceEvent {
    public static final byte IMPRESSION = 0;
    public static final byte CLICK = 1;
    public static final byte MALFORMED = 2;

    public byte kind;
    public String requestId;
    public long eventTime;
    /** Impression fields. */
    public String modelId;
    public long modelVersion;
    public long exploreSeed;
    public String[] itemIds;
    public boolean[] explore;
    /** Per slot, the explore seed whose list it came from (-1: none given, e.g. a CURRENT slot). */
    public long[] slotSeeds;
    /** When multileaving (more than one explore seed): every seed, one team each; else null. */
    public long[] exploreSeeds;
    /** A Plackett-Luce sampled list (interleaving "pdgd"): its clicked impressions go to the PDGD step. */
    public boolean pdgd;
    /** Click field. */
    public String itemId;
    /** Origin, for dead letters and major-update offset ranges. */
    public String topic;
    public int partition;
    public long offset;
    public byte[] rawKey;
    public byte[] rawValue;
    /** Why a MALFORMED record failed to decode (or is out of range). */
    public String detail;
    /** The dead-letter reason of a MALFORMED event: null means MALFORMED, else e.g. OUT_OF_RANGE. */
    public String reason;

    public SourceEvent() {}
}
