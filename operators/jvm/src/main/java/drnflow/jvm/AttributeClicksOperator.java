package drnflow.jvm;

import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Runs {@link AttributeClicks} and sends the partial counts of every window a watermark makes final before it
 * forwards that watermark, so count-outcomes has each subtask's share of a window when it decides the window.
 *
 * <p>The send follows the watermark, not a keyed timer: a restore at another parallelism splits the partial
 * counts (operator list state) among the new subtasks by position, and the requests' state and timers by key
 * group, so a subtask can hold a window's counts with no timer of its own keys anywhere near the window's
 * end. A keyed flush timer then came late, after count-outcomes had emitted the window without that share,
 * and the share became a second row of the same window.
 */
public final class AttributeClicksOperator extends KeyedProcessOperator<String, SourceEvent, PartialCounts> {
    private static final long serialVersionUID = 1L;

    public AttributeClicksOperator(AttributeClicks attribution) {
        super(attribution);
    }

    /**
     * What AbstractStreamOperator does (fire the timers up to the watermark, then forward it), with the send of
     * the final windows in between. Flink's interruptible timers (off unless configured) are not used here.
     */
    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (timeServiceManager != null) {
            timeServiceManager.advanceWatermark(mark);
        }
        ((AttributeClicks) userFunction).sendFinal(mark.getTimestamp(),
                (finalAt, counts) -> output.collect(new StreamRecord<>(counts, finalAt)));
        output.emitWatermark(mark);
    }
}
