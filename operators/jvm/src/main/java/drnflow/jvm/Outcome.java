package drnflow.jvm;

/** The interleaving outcome of one impression (design.md §4), with where its records sit in Kafka. */
public class Outcome {
    public static final byte NO_CLICK = 0;
    public static final byte EXPLORE = 1;
    public static final byte CURRENT = 2;
    public static final byte TIE = 3;

    public String modelId;
    public long windowStart;
    public long modelVersion;
    public long exploreSeed;
    public byte result;
    public int impressionPartition;
    public long impressionOffset;
    public int[] clickPartitions;
    public long[] clickOffsets;
    /** A PDGD impression with a counted click: its raw value and the clicked positions (else null). */
    public byte[] pdgdImpression;
    public int[] pdgdClicked;

    public Outcome() {}
}
