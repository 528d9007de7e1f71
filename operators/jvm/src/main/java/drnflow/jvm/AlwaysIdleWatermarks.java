package drnflow.jvm;

import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;

/**
 * Watermarks for a control stream (model-weights) joined to an event-time stream: it never emits a
 * watermark and declares itself idle, so the join's watermark is always the data's alone.
 *
 * <p>It used to emit Long.MAX_VALUE - 1 instead. That never held windows back while data flowed, but
 * when the data sources went idle (a gap in traffic longer than --idleness) Flink left the control
 * stream as the only active input, the join's watermark jumped to MAX - 1, and every window row that
 * arrived after the gap registered its timer in the past: no output, ever again, with the job RUNNING.
 * An idle input is left out of the join's watermark, and when every input is idle the watermark stays
 * where the data left it. Records of an idle input are still delivered.
 */
public final class AlwaysIdleWatermarks<T> implements WatermarkGenerator<T> {
    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
        output.markIdle();
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        output.markIdle();
    }
}
