package drnflow.jvm;

import org.apache.flink.metrics.Gauge;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;

/**
 * Joins the impressions (input 1) and clicks (input 2) streams, records unchanged, with an event-time
 * watermark that never passes the impressions' own: clicks alone never move event time forward.
 *
 * <p>A plain union takes the minimum watermark of its active inputs and leaves an idle input out. After
 * any gap longer than --idleness (a night, a broker outage) both sources are idle, and whichever
 * catches up on its backlog first drives the watermark alone: when the clicks came back first, their
 * watermark passed the impressions still in the backlog and every one of them went LATE (seen after a
 * 16 s broker restart); when the impressions came first, their clicks went LATE. Here the watermark is
 * <ul>
 *   <li>the minimum of both inputs while the clicks input is active, so it is never ahead of the
 *       impressions (an idle impressions input keeps its last watermark, which then holds);</li>
 *   <li>the impressions' alone while the clicks input is idle (clicks are sparse; a quiet click stream
 *       must not stop the windows, and at the end of a burst the last windows still close);</li>
 *   <li>when the impressions turn active again after being idle, an idle clicks input still holds the
 *       watermark at its last value for one more idleness timeout, so a clicks backlog fetched a little
 *       after the impressions backlog is not LATE.</li>
 * </ul>
 * Downstream the output stays active (the only input it meets later, model-weights, is always idle), so
 * a watermark emitted after both inputs went idle is not discarded. Watermarks are not checkpointed, as
 * everywhere in Flink (AttributeClicks keeps the highest one it saw).
 *
 * <p>Two gauges say how far apart the inputs run in event time while both are active (the sources'
 * watermark alignment, --max-source-drift, keeps it small): {@code sourceSkewMs}, clicks minus
 * impressions now, and {@code maxSourceSkewMs}, the largest absolute skew since the task started.
 */
public final class ImpressionsLeadWatermarks extends AbstractStreamOperator<SourceEvent>
        implements TwoInputStreamOperator<SourceEvent, SourceEvent, SourceEvent> {
    private static final long serialVersionUID = 1L;

    private final long graceMs;

    private transient long impressionsWatermark;
    private transient long clicksWatermark;
    private transient boolean impressionsIdle;
    private transient boolean clicksIdle;
    /** Processing time until which an idle clicks input still holds the watermark. */
    private transient long clicksGraceEndsAt;
    private transient long emitted;
    private transient long maxSkewMs;
    /**
     * Whether each input has sent a watermark since it last went idle: an input that turns active again
     * announces it before its next watermark, and until then its old one would show a false skew.
     */
    private transient boolean impressionsFresh;
    private transient boolean clicksFresh;

    /** @param graceMs how long an idle clicks input may still catch up once impressions resume (the idleness). */
    public ImpressionsLeadWatermarks(long graceMs) {
        this.graceMs = graceMs;
    }

    @Override
    public void open() throws Exception {
        super.open();
        impressionsWatermark = Long.MIN_VALUE;
        clicksWatermark = Long.MIN_VALUE;
        impressionsIdle = false;
        clicksIdle = false;
        clicksGraceEndsAt = Long.MIN_VALUE;
        emitted = Long.MIN_VALUE;
        maxSkewMs = 0;
        impressionsFresh = false;
        clicksFresh = false;
        getMetricGroup().gauge("sourceSkewMs", (Gauge<Long>) this::skewMs);
        getMetricGroup().gauge("maxSourceSkewMs", (Gauge<Long>) () -> maxSkewMs);
    }

    /** Clicks' watermark minus the impressions' while both inputs are active, fresh and mid-stream; else 0. */
    private long skewMs() {
        boolean known = midStream(impressionsWatermark) && midStream(clicksWatermark);
        boolean current = impressionsFresh && clicksFresh && !impressionsIdle && !clicksIdle;
        return known && current ? clicksWatermark - impressionsWatermark : 0;
    }

    @Override
    public void processElement1(StreamRecord<SourceEvent> element) {
        output.collect(element);
    }

    @Override
    public void processElement2(StreamRecord<SourceEvent> element) {
        output.collect(element);
    }

    @Override
    public void processWatermark1(Watermark mark) throws Exception {
        impressionsWatermark = Math.max(impressionsWatermark, mark.getTimestamp());
        impressionsFresh = true;
        maxSkewMs = Math.max(maxSkewMs, Math.abs(skewMs()));
        advance();
    }

    @Override
    public void processWatermark2(Watermark mark) throws Exception {
        clicksWatermark = Math.max(clicksWatermark, mark.getTimestamp());
        clicksFresh = true;
        maxSkewMs = Math.max(maxSkewMs, Math.abs(skewMs()));
        advance();
    }

    @Override
    protected void processWatermarkStatus(WatermarkStatus status, int index) throws Exception {
        if (index == 0) {
            boolean resumed = impressionsIdle && !status.isIdle();
            impressionsIdle = status.isIdle();
            impressionsFresh &= !status.isIdle();
            if (resumed && graceMs > 0) {
                clicksGraceEndsAt = getProcessingTimeService().getCurrentProcessingTime() + graceMs;
                getProcessingTimeService().registerTimer(clicksGraceEndsAt, t -> advance());
            }
        } else {
            clicksIdle = status.isIdle();
            clicksFresh &= !status.isIdle();
        }
        advance();
    }

    /** Neither before the first watermark nor the end-of-input one. */
    private static boolean midStream(long watermark) {
        return watermark != Long.MIN_VALUE && watermark != Long.MAX_VALUE;
    }

    private void advance() throws Exception {
        long next = impressionsWatermark;
        boolean clicksHold = !clicksIdle
                || getProcessingTimeService().getCurrentProcessingTime() < clicksGraceEndsAt;
        if (clicksHold) {
            next = Math.min(next, clicksWatermark);
        }
        if (next > emitted) {
            emitted = next;
            super.processWatermark(new Watermark(next));
        }
    }
}
