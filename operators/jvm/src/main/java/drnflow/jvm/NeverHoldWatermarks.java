package drnflow.jvm;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;

/**
 * Watermarks for a control stream (model-weights) joined to an event-time stream: it always reports
 * "no event time to wait for", so the join's watermark is the data's and MAJOR versions, applied on
 * arrival, never hold windows back.
 */
public final class NeverHoldWatermarks<T> implements WatermarkGenerator<T> {
    private static final Watermark END = new Watermark(Long.MAX_VALUE - 1);

    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {}

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        output.emitWatermark(END);
    }
}
