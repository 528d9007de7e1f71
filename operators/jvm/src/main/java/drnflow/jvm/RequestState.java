package drnflow.jvm;

/**
 * Everything attribution keeps for one request_id, in one value so each event costs one state access:
 * the (first) impression with the click counted per slot, or the clicks that came before it. After the
 * impression's outcome is counted, `counted`, `explore` and `modelId` are null: only the event time, the
 * item ids and the origin stay until the click horizon ends.
 */
public class RequestState {
    public boolean hasImpression;
    public long impressionTime;
    public String modelId;
    public long modelVersion;
    public long exploreSeed;
    public String[] itemIds;
    public boolean[] explore;
    /** As SourceEvent: per slot the seed of its list, and the multileaved seeds (null: one explore team). */
    public long[] slotSeeds;
    public long[] exploreSeeds;
    /** A PDGD impression's raw value until its outcome (null otherwise): the step reads its features. */
    public byte[] pdgdImpression;
    /** Per slot, the click that counts for it so far (null: none); kept whole so it can lose to an earlier one. */
    public SourceEvent[] counted;
    public int impressionPartition;
    public long impressionOffset;
    public boolean outcomeEmitted;
    /** Clicks that arrived before any impression of their request_id, in arrival order. */
    public SourceEvent[] pending;

    public RequestState() {}
}
