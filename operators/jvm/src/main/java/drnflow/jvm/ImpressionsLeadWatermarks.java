package drnflow.jvm;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;

/**
 * Joins the impressions (input 1) and clicks (input 2) streams, records unchanged, with an event-time
 * watermark that clicks alone never move forward.
 *
 * <p>A plain union takes the minimum watermark of its active inputs and leaves an idle input out. After
 * any gap longer than --idleness (a night, a broker outage) both sources are idle, and whichever
 * catches up on its backlog first drives the watermark alone: when the clicks came back first, their
 * watermark passed the impressions still in the backlog and every one of them went LATE (seen after a
 * 16 s broker restart); when the impressions came first, their clicks went LATE. Here:
 * <ul>
 *   <li>while the impressions input is idle the watermark holds, whatever the clicks do (their records
 *       still pass and wait in attribution state for their impressions);</li>
 *   <li>while it is active the watermark is the minimum of both inputs, or the impressions' alone when
 *       the clicks are idle (clicks are sparse; a quiet click stream must not stop the windows);</li>
 *   <li>when the impressions turn active again after being idle, an idle clicks input still holds the
 *       watermark at its last value for one more idleness timeout, so a clicks backlog fetched a little
 *       after the impressions backlog is not LATE.</li>
 * </ul>
 * The output is idle only when both inputs are. A finished input (watermark Long.MAX_VALUE) never
 * holds anything. Watermarks are not checkpointed, as everywhere in Flink (AttributeClicks keeps the
 * highest one it saw).
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
    private transient boolean outputIdle;

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
        outputIdle = false;
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
        advance();
    }

    @Override
    public void processWatermark2(Watermark mark) throws Exception {
        clicksWatermark = Math.max(clicksWatermark, mark.getTimestamp());
        advance();
    }

    @Override
    protected void processWatermarkStatus(WatermarkStatus status, int index) throws Exception {
        if (index == 0) {
            boolean resumed = impressionsIdle && !status.isIdle();
            impressionsIdle = status.isIdle();
            if (resumed && graceMs > 0) {
                long now = getProcessingTimeService().getCurrentProcessingTime();
                clicksGraceEndsAt = now + graceMs;
                getProcessingTimeService().registerTimer(clicksGraceEndsAt, t -> advance());
            }
        } else {
            clicksIdle = status.isIdle();
        }
        boolean idle = impressionsIdle && clicksIdle;
        if (idle != outputIdle) {
            outputIdle = idle;
            output.emitWatermarkStatus(idle ? WatermarkStatus.IDLE : WatermarkStatus.ACTIVE);
        }
        advance();
    }

    private void advance() throws Exception {
        boolean impressionsDone = impressionsWatermark == Long.MAX_VALUE;
        if (impressionsIdle && !impressionsDone) {
            return;
        }
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
