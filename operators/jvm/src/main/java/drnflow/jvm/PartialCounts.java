package drnflow.jvm;

import org.apache.flink.api.java.tuple.Tuple4;

/**
 * One attribution subtask's counts of one (model_id, window_start, model_version, explore_seed), sent to
 * the count operator once the window is final there; the count operator adds up the subtasks' partials.
 */
public class PartialCounts {
    public Tuple4<String, Long, Long, Long> key;
    public WindowCounts counts;

    public PartialCounts() {}

    PartialCounts(Tuple4<String, Long, Long, Long> key, WindowCounts counts) {
        this.key = key;
        this.counts = counts;
    }
}
