package drnflow.jvm;

/**
 * Running counts of one (model_id, window, model_version, explore_seed) and, per Kafka partition,
 * the offset range its impressions and counted clicks came from.
 */
public class WindowCounts {
    public long impressions;
    public long exploreWins;
    public long currentWins;
    public long ties;
    public long noClicks;
    public int[] impressionPartitions = new int[0];
    public long[] impressionFirst = new long[0];
    public long[] impressionLast = new long[0];
    public int[] clickPartitions = new int[0];
    public long[] clickFirst = new long[0];
    public long[] clickLast = new long[0];
    /** PDGD impressions with a counted click; the first `pdgdCount` entries are used (capacity doubles). */
    public PdgdSample[] pdgd = new PdgdSample[0];
    public int pdgdCount;

    public WindowCounts() {}

    void add(Outcome o) {
        impressions++;
        switch (o.result) {
            case Outcome.EXPLORE -> exploreWins++;
            case Outcome.CURRENT -> currentWins++;
            case Outcome.TIE -> ties++;
            default -> noClicks++;
        }
        if (!OffsetRanges.addExisting(impressionPartitions, impressionFirst, impressionLast, o.impressionPartition,
                o.impressionOffset)) {
            OffsetRanges imp = new OffsetRanges(impressionPartitions, impressionFirst, impressionLast);
            imp.add(o.impressionPartition, o.impressionOffset);
            impressionPartitions = imp.partitions;
            impressionFirst = imp.first;
            impressionLast = imp.last;
        }
        if (o.clickPartitions.length > 0) {
            OffsetRanges clk = new OffsetRanges(clickPartitions, clickFirst, clickLast);
            for (int i = 0; i < o.clickPartitions.length; i++) {
                clk.add(o.clickPartitions[i], o.clickOffsets[i]);
            }
            clickPartitions = clk.partitions;
            clickFirst = clk.first;
            clickLast = clk.last;
        }
        if (o.pdgdImpression != null) {
            addPdgd(new PdgdSample(o.impressionPartition, o.impressionOffset, o.pdgdImpression, o.pdgdClicked));
        }
    }

    private void addPdgd(PdgdSample sample) {
        if (pdgdCount == pdgd.length) {
            pdgd = java.util.Arrays.copyOf(pdgd, Math.max(4, 2 * pdgd.length));
        }
        pdgd[pdgdCount++] = sample;
    }

    /** Adds another subtask's partial counts of the same key. */
    void merge(WindowCounts o) {
        impressions += o.impressions;
        exploreWins += o.exploreWins;
        currentWins += o.currentWins;
        ties += o.ties;
        noClicks += o.noClicks;
        OffsetRanges imp = new OffsetRanges(impressionPartitions, impressionFirst, impressionLast);
        for (int i = 0; i < o.impressionPartitions.length; i++) {
            imp.add(o.impressionPartitions[i], o.impressionFirst[i]);
            imp.add(o.impressionPartitions[i], o.impressionLast[i]);
        }
        impressionPartitions = imp.partitions;
        impressionFirst = imp.first;
        impressionLast = imp.last;
        OffsetRanges clk = new OffsetRanges(clickPartitions, clickFirst, clickLast);
        for (int i = 0; i < o.clickPartitions.length; i++) {
            clk.add(o.clickPartitions[i], o.clickFirst[i]);
            clk.add(o.clickPartitions[i], o.clickLast[i]);
        }
        clickPartitions = clk.partitions;
        clickFirst = clk.first;
        clickLast = clk.last;
        for (int i = 0; i < o.pdgdCount; i++) {
            addPdgd(o.pdgd[i]);
        }
    }

    /** Per-partition [first, last] offsets as parallel arrays (few partitions: a linear scan is fine). */
    static final class OffsetRanges {
        int[] partitions;
        long[] first;
        long[] last;

        OffsetRanges(int[] partitions, long[] first, long[] last) {
            this.partitions = partitions;
            this.first = first;
            this.last = last;
        }

        /** Widens the partition's range in place; false when the partition has none yet (nothing changed). */
        static boolean addExisting(int[] partitions, long[] first, long[] last, int partition, long offset) {
            for (int i = 0; i < partitions.length; i++) {
                if (partitions[i] == partition) {
                    first[i] = Math.min(first[i], offset);
                    last[i] = Math.max(last[i], offset);
                    return true;
                }
            }
            return false;
        }

        void add(int partition, long offset) {
            for (int i = 0; i < partitions.length; i++) {
                if (partitions[i] == partition) {
                    first[i] = Math.min(first[i], offset);
                    last[i] = Math.max(last[i], offset);
                    return;
                }
            }
            int n = partitions.length;
            partitions = java.util.Arrays.copyOf(partitions, n + 1);
            first = java.util.Arrays.copyOf(first, n + 1);
            last = java.util.Arrays.copyOf(last, n + 1);
            partitions[n] = partition;
            first[n] = offset;
            last[n] = offset;
        }

        /** "partition:start:end;..." with end exclusive, partitions ascending. */
        static String format(int[] partitions, long[] first, long[] last) {
            Integer[] order = new Integer[partitions.length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Integer.compare(partitions[a], partitions[b]));
            StringBuilder sb = new StringBuilder();
            for (int i : order) {
                if (sb.length() > 0) {
                    sb.append(';');
                }
                sb.append(partitions[i]).append(':').append(first[i]).append(':').append(last[i] + 1);
            }
            return sb.toString();
        }
    }
}
