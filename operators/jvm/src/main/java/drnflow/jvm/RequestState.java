package drnflow.jvm;

/**
 * Everything attribution keeps for one request_id, in one value so each event costs one state access:
 * the (first) impression with the click counted per slot, or the clicks that came before it. After the
 * impression's outcome is counted (or the impression is LATE) the state is compact for the rest of the click
 * horizon: the event time, the item ids packed into {@link #itemBytes} and the origin (partition, offset); the
 * other references are null.
 *
 * <p>A Flink POJO in checkpoints and savepoints: fields may be added (POJO schema evolution restores an older
 * checkpoint, the new fields null), none removed or renamed. A compact state from before {@code itemBytes}
 * has its ids in {@link #itemIds} and is judged from there.
 */
public class RequestState {
    public boolean hasImpression;
    public long impressionTime;
    public String modelId;
    public long modelVersion;
    public long exploreSeed;
    /** The slots' item ids until the state is compact (then null, the ids are in {@link #itemBytes}). */
    public String[] itemIds;
    /**
     * The compact form of the item ids ({@link ItemIds#pack}): per slot its UTF-8 length (unsigned varint) and
     * bytes, one array instead of a String[] and a String per slot. Null until compact, and in a compact state
     * restored from a checkpoint written before this field (or, never for ids decoded from Avro, ids that do
     * not encode losslessly: those stay in {@link #itemIds}).
     */
    public byte[] itemBytes;
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
