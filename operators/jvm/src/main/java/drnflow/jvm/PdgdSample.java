package drnflow.jvm;

/**
 * One PDGD impression with a counted click, as the Python PDGD step reads it (schemas/pdgd_batch.avsc):
 * where it sits on the impressions topic, its value as logged, and the clicked positions.
 */
public class PdgdSample {
    public int partition;
    public long offset;
    public byte[] impression;
    public int[] clicked;

    public PdgdSample() {}

    PdgdSample(int partition, long offset, byte[] impression, int[] clicked) {
        this.partition = partition;
        this.offset = offset;
        this.impression = impression;
        this.clicked = clicked;
    }
}
