package drnflow.jvm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Attribution and credit of design.md §4, keyed by request_id, on event time.
 *
 * <p>Rules for a click c of request r (checked in this order; the first that fails is the reason):
 * <ol>
 *   <li>UNKNOWN_REQUEST: r has no impression i with |c.t - i.t| <= click horizon (24 h by default). The
 *       horizon is state retention: how long a request stays known after its impression. It makes "no
 *       impression" decidable: a click waits for its impression until the watermark passes c.t + horizon,
 *       and an impression is kept until the watermark passes i.t + horizon. Once the impression's outcome
 *       is counted only its event time and shown item ids are kept (enough to tell ITEM_NOT_SHOWN from
 *       OUTSIDE_WINDOW for any later click), the ids packed into one byte[] ({@link ItemIds}). A long
 *       horizon is not free: 300k held requests (10 slots, ids like 'item12345', the newest still in their
 *       attribution window) cost 484 bytes each of heap (927 before the ids were packed) and 206 per full
 *       checkpoint (bench/bench_minor_update.py, state size). A compact one is about 390: the RequestState
 *       88, the packed ids 120, the request_id key 56, the state map entry ~47 and its horizon timer ~75 (the
 *       timer 32, the timer queue's dedupe HashMap node 32, their arrays' slots). A 24 h horizon at R
 *       requests/s holds 86,400·R requests: ~42 GB of heap at 1,000/s, 1 GB for ~24 requests/s.</li>
 *   <li>ITEM_NOT_SHOWN: c.item_id is not in i's slots.</li>
 *   <li>OUTSIDE_WINDOW: not i.t <= c.t <= i.t + attribution window.</li>
 *   <li>DUPLICATE: another click on the same (request_id, item_id) passes the rules above and comes
 *       first by (event_time, offset); that one counts, whatever order they arrive in.</li>
 *   <li>LATE: the impression's outcome was already emitted when the click arrived (the click was later
 *       than the watermark allows), or the impression itself was LATE. A click of a request with no
 *       impression at hand whose own window is already final is LATE on arrival: any impression that could
 *       credit it is no later than it, so it is (or was) LATE too; the click does not wait for c.t + horizon.</li>
 * </ol>
 * The first impression of a request_id in topic order is the impression; a later one within the
 * horizon is DUPLICATE_IMPRESSION, even when it carries an earlier event time (design.md §4; the Python
 * side is models/attribution.py). An impression whose window is already final when it arrives is LATE
 * (final by the watermark, or by the highest watermark seen before a restore); it is kept as a counted one
 * is (event time, item ids), so its clicks are judged against it and a second copy is DUPLICATE_IMPRESSION.
 * Each impression's outcome is decided once, when the watermark passes i.t + attribution window; every
 * decision depends only on the records, not on how the two topics interleave, as long as no record is
 * later than the watermark's bounded out-of-orderness.
 *
 * <p>A held request keeps one event-time timer (i.t + horizon; before its outcome also i.t + attribution
 * window), and that stays so: Flink clears a key's state only from a callback where that key is current, and
 * keyed timers are per (key, time), so each request needs its own (rounding the time up would keep a request
 * known past its horizon, making a new impression DUPLICATE_IMPRESSION); Flink's state TTL is processing time,
 * not the watermark the rules are in; an index of keys by expiry in the operator would cost as much per key.
 *
 * <p>Outcomes are not sent downstream one by one: each subtask adds them up per (model_id, window,
 * model_version, explore_seed) and sends one {@link PartialCounts} per key when the window is final, before
 * the watermark that makes it final goes downstream ({@link AttributeClicksOperator}, {@link #sendFinal}), so
 * the per-impression work stays in this operator. The partial counts are operator state; after a restore at
 * another parallelism a subtask may hold a share of a window whose requests are all elsewhere, and sends it
 * all the same.
 */
public final class AttributeClicks extends KeyedProcessFunction<String, SourceEvent, PartialCounts>
        implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;

    private final long windowMs;
    private final long attributionMs;
    private final long horizonMs;

    private transient ValueState<RequestState> state;
    /** This subtask's counts of windows not yet final, and the checkpointed copy of them. */
    private transient Map<Tuple4<String, Long, Long, Long>, WindowCounts> partial;
    private transient ListState<PartialCounts> partialState;
    /** Smallest final time among `partial`'s windows, so most watermarks skip the send scan. */
    private transient long nextFinal;
    /** The key `partialFor` found last and its counts (null: none); dropped when `partial` drops keys. */
    private transient Tuple4<String, Long, Long, Long> lastKey;
    private transient WindowCounts lastCounts;
    /**
     * The highest watermark this job has seen, checkpointed (union state: the maximum of all subtasks).
     * Flink does not checkpoint watermarks: after a restore the watermark starts again at Long.MIN_VALUE,
     * and without this floor an impression with an old event time would open a window that was already
     * decided and sent downstream. With it, such an impression is LATE, as it would have been without the
     * restore.
     */
    private transient long watermarkFloor;
    private transient ListState<Long> floorState;

    public AttributeClicks(long windowMs, long attributionMs, long horizonMs) {
        this.windowMs = windowMs;
        this.attributionMs = attributionMs;
        this.horizonMs = horizonMs;
    }

    @Override
    public void open(OpenContext openContext) {
        state = getRuntimeContext().getState(
                new ValueStateDescriptor<>("request", TypeInformation.of(RequestState.class)));
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        partialState = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("partial-counts", TypeInformation.of(PartialCounts.class)));
        floorState = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("watermark-floor", TypeInformation.of(Long.class)));
        watermarkFloor = Long.MIN_VALUE;
        for (Long w : floorState.get()) {
            watermarkFloor = Math.max(watermarkFloor, w);
        }
        partial = new HashMap<>();
        nextFinal = Long.MAX_VALUE;
        for (PartialCounts p : partialState.get()) {
            nextFinal = Math.min(nextFinal, finalAt(p.key.f1));
            WindowCounts held = partial.get(p.key);
            if (held == null) {
                partial.put(p.key, p.counts);
            } else {
                held.merge(p.counts);
            }
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        List<PartialCounts> all = new ArrayList<>(partial.size());
        for (Map.Entry<Tuple4<String, Long, Long, Long>, WindowCounts> e : partial.entrySet()) {
            all.add(new PartialCounts(e.getKey(), e.getValue()));
        }
        partialState.update(all);
        floorState.update(List.of(watermarkFloor));
    }

    /** The watermark, never below the highest one seen before a restore (see {@link #watermarkFloor}). */
    private long watermark(Context ctx) {
        watermarkFloor = Math.max(watermarkFloor, ctx.timerService().currentWatermark());
        return watermarkFloor;
    }

    /** Watermark time at which the window starting at `ws` is final (its last outcome is decided). */
    private long finalAt(long ws) {
        return ws + windowMs + attributionMs - 1;
    }

    static long windowStart(long t, long size) {
        return t - Math.floorMod(t, size);
    }

    @Override
    public void processElement(SourceEvent e, Context ctx, Collector<PartialCounts> out) throws Exception {
        RequestState s = state.value();
        if (e.kind == SourceEvent.IMPRESSION) {
            onImpression(e, s, ctx);
        } else {
            onClick(e, s, ctx);
        }
    }

    private void onImpression(SourceEvent e, RequestState s, Context ctx) throws Exception {
        if (s != null && s.hasImpression) {
            ctx.output(MinorUpdatePipeline.DEAD_LETTERS, DeadLetterRecord.of(e, DeadLetterRecord.DUPLICATE_IMPRESSION,
                    "request_id " + e.requestId + " already has an impression (" + e.topic + "/"
                            + s.impressionPartition + "@" + s.impressionOffset + ")"));
            return;
        }
        long ws = windowStart(e.eventTime, windowMs);
        long watermark = watermark(ctx);
        if (finalAt(ws) <= watermark) {
            ctx.output(MinorUpdatePipeline.DEAD_LETTERS, DeadLetterRecord.of(e, DeadLetterRecord.LATE,
                    "impression event_time " + e.eventTime + " is in a window already final at watermark "
                            + watermark));
            // The request is seen, and its outcome is as final as a counted one's: keep the compact state a
            // counted impression keeps after its outcome, so its clicks (those already waiting and those to
            // come) are judged now (rules 1-3, then LATE) and a second impression is DUPLICATE_IMPRESSION.
            if (s == null) {
                s = new RequestState();
            }
            s.hasImpression = true;
            s.outcomeEmitted = true;
            s.impressionTime = e.eventTime;
            s.itemIds = e.itemIds;
            compactItemIds(s);
            s.impressionPartition = e.partition;
            s.impressionOffset = e.offset;
            ctx.timerService().registerEventTimeTimer(e.eventTime + horizonMs);
            judgeWaiting(s, ctx);
            state.update(s);
            return;
        }
        if (s == null) {
            s = new RequestState();
        }
        s.hasImpression = true;
        s.impressionTime = e.eventTime;
        s.modelId = e.modelId;
        s.modelVersion = e.modelVersion;
        s.exploreSeed = e.exploreSeed;
        s.itemIds = e.itemIds;
        s.explore = e.explore;
        s.slotSeeds = e.slotSeeds;
        s.exploreSeeds = e.exploreSeeds;
        s.pdgdImpression = e.pdgd ? e.rawValue : null;
        s.counted = new SourceEvent[e.itemIds.length];
        s.impressionPartition = e.partition;
        s.impressionOffset = e.offset;
        ctx.timerService().registerEventTimeTimer(e.eventTime + attributionMs);
        ctx.timerService().registerEventTimeTimer(e.eventTime + horizonMs);
        if (e.exploreSeeds == null) {
            openPartial(e.modelId, ws, e.modelVersion, e.exploreSeed);
        } else {
            for (long seed : e.exploreSeeds) {
                openPartial(e.modelId, ws, e.modelVersion, seed);
            }
        }
        judgeWaiting(s, ctx);
        state.update(s);
    }

    /** Makes sure `partial` holds the key (an impression's window is sent even if none of it clicks). */
    private void openPartial(String modelId, long ws, long modelVersion, long seed) {
        if (partialFor(modelId, ws, modelVersion, seed) == null) {
            newPartial(Tuple4.of(modelId, ws, modelVersion, seed));
        }
    }

    private WindowCounts newPartial(Tuple4<String, Long, Long, Long> key) {
        WindowCounts counts = new WindowCounts();
        partial.put(key, counts);
        remember(key, counts);
        nextFinal = Math.min(nextFinal, finalAt(key.f1));
        return counts;
    }

    /**
     * The partial counts of a key, or null. Consecutive impressions and outcomes nearly always share it, so
     * the last key found is checked first, without a Tuple4 and boxing per event.
     */
    private WindowCounts partialFor(String modelId, long ws, long modelVersion, long seed) {
        Tuple4<String, Long, Long, Long> k = lastKey;
        if (k != null && k.f1 == ws && k.f2 == modelVersion && k.f3 == seed && k.f0.equals(modelId)) {
            return lastCounts;
        }
        Tuple4<String, Long, Long, Long> key = Tuple4.of(modelId, ws, modelVersion, seed);
        WindowCounts counts = partial.get(key);
        if (counts != null) {
            remember(key, counts);
        }
        return counts;
    }

    private void remember(Tuple4<String, Long, Long, Long> key, WindowCounts counts) {
        lastKey = key;
        lastCounts = counts;
    }

    /** The clicks that arrived before the request's impression, judged against it now. */
    private void judgeWaiting(RequestState s, Context ctx) throws Exception {
        SourceEvent[] waiting = s.pending;
        s.pending = null;
        if (waiting != null) {
            for (SourceEvent c : waiting) {
                judge(c, s, ctx);
            }
        }
    }

    private void onClick(SourceEvent c, RequestState s, Context ctx) throws Exception {
        if (s != null && s.hasImpression) {
            judge(c, s, ctx);
            state.update(s);
            return;
        }
        // No impression kept for this request. Any impression that could credit c has i.t <= c.t, so its
        // window is at most c's; once that window is final such an impression is LATE (or already was), and
        // c can never count: it is LATE now, as an impression is, rather than waiting in state for a
        // watermark c.t + horizon that may never come (and then being called UNKNOWN_REQUEST).
        long watermark = watermark(ctx);
        if (finalAt(windowStart(c.eventTime, windowMs)) <= watermark) {
            dead(c, DeadLetterRecord.LATE, "click event_time " + c.eventTime + " has no impression of request_id "
                    + c.requestId + " and is in a window already final at watermark " + watermark, ctx);
            return;
        }
        if (s == null) {
            s = new RequestState();
        }
        s.pending = s.pending == null ? new SourceEvent[] {c} : append(s.pending, c);
        ctx.timerService().registerEventTimeTimer(c.eventTime + horizonMs);
        state.update(s);
    }

    private static SourceEvent[] append(SourceEvent[] xs, SourceEvent x) {
        SourceEvent[] ys = Arrays.copyOf(xs, xs.length + 1);
        ys[xs.length] = x;
        return ys;
    }

    /** Decides one click against the request's impression: count it or dead-letter it with a reason. */
    private void judge(SourceEvent c, RequestState s, Context ctx) {
        long dt = c.eventTime - s.impressionTime;
        if (dt < -horizonMs || dt > horizonMs) {
            dead(c, DeadLetterRecord.UNKNOWN_REQUEST, "no impression of request_id " + c.requestId
                    + " within " + horizonMs + " ms of click event_time " + c.eventTime, ctx);
            return;
        }
        int slot = slotOf(s, c.itemId);
        if (slot < 0) {
            dead(c, DeadLetterRecord.ITEM_NOT_SHOWN, "item_id " + c.itemId + " is not in the slots of request_id "
                    + c.requestId, ctx);
        } else if (dt < 0 || dt > attributionMs) {
            dead(c, DeadLetterRecord.OUTSIDE_WINDOW, "click event_time " + c.eventTime + " is " + dt
                    + " ms after its impression; the attribution window is [0, " + attributionMs + "] ms", ctx);
        } else if (s.outcomeEmitted) {
            dead(c, DeadLetterRecord.LATE, "click arrived after the outcome of request_id " + c.requestId
                    + " was final", ctx);
        } else {
            SourceEvent held = s.counted[slot];
            if (held == null) {
                s.counted[slot] = c;
            } else {
                // The earliest click by (event_time, offset) counts, whatever order the clicks arrive in.
                boolean earlier = c.eventTime < held.eventTime
                        || (c.eventTime == held.eventTime && c.offset < held.offset);
                SourceEvent loser = earlier ? held : c;
                if (earlier) {
                    s.counted[slot] = c;
                }
                dead(loser, DeadLetterRecord.DUPLICATE, "(request_id, item_id) = (" + c.requestId + ", "
                        + c.itemId + ") was already counted", ctx);
            }
        }
    }

    /** The slot showing `itemId` (the first), or -1: from the Strings, or the packed bytes once compact. */
    private static int slotOf(RequestState s, String itemId) {
        String[] ids = s.itemIds;
        if (ids == null) {
            return ItemIds.slotOf(s.itemBytes, itemId);
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i].equals(itemId)) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Packs the item ids into {@link RequestState#itemBytes} and drops the String[] (and its Strings): the
     * compact state's largest part. Ids without a lossless UTF-8 form (never the case for ids decoded from
     * Avro) stay as they are, so a click matches exactly what it matched before.
     */
    private static void compactItemIds(RequestState s) {
        if (s.itemIds != null) {
            byte[] packed = ItemIds.pack(s.itemIds);
            if (packed != null) {
                s.itemBytes = packed;
                s.itemIds = null;
            }
        }
    }

    private static void dead(SourceEvent c, String reason, String detail, Context ctx) {
        ctx.output(MinorUpdatePipeline.DEAD_LETTERS, DeadLetterRecord.of(c, reason, detail));
    }

    /** Where {@link #sendFinal} sends a window's partial counts: (its final time, the counts). */
    interface FinalSink {
        void send(long finalAt, PartialCounts counts);
    }

    /**
     * Sends (and forgets) the partial counts of every window final at `watermark`, called by the operator after
     * the timers up to `watermark` fired: each outcome is decided by a timer at i.t + attribution window, no
     * later than its window's final time, so every outcome of such a window is in.
     */
    void sendFinal(long watermark, FinalSink out) {
        watermarkFloor = Math.max(watermarkFloor, watermark);
        if (nextFinal >= watermark) {
            return;
        }
        nextFinal = Long.MAX_VALUE;
        remember(null, null);
        Iterator<Map.Entry<Tuple4<String, Long, Long, Long>, WindowCounts>> it = partial.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Tuple4<String, Long, Long, Long>, WindowCounts> e = it.next();
            long fin = finalAt(e.getKey().f1);
            if (fin < watermark) {
                out.send(fin + 1, new PartialCounts(e.getKey(), e.getValue()));
                it.remove();
            } else {
                nextFinal = Math.min(nextFinal, fin);
            }
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<PartialCounts> out) throws Exception {
        watermark(ctx);
        onRequestTimer(timestamp, ctx);
    }

    private void onRequestTimer(long timestamp, OnTimerContext ctx) throws Exception {
        RequestState s = state.value();
        if (s == null) {
            return;
        }
        if (s.hasImpression) {
            if (!s.outcomeEmitted && timestamp >= s.impressionTime + attributionMs) {
                if (s.exploreSeeds == null) {
                    countOutcome(outcomeOf(s, s.exploreSeed));
                } else {
                    for (long seed : s.exploreSeeds) {
                        countOutcome(outcomeOf(s, seed));
                    }
                }
                s.outcomeEmitted = true;
                // Compact for the rest of the horizon: judge() needs only the time and the item ids now.
                compactItemIds(s);
                s.counted = null;
                s.explore = null;
                s.slotSeeds = null;
                s.exploreSeeds = null;
                s.modelId = null;
                s.pdgdImpression = null;
            }
            if (timestamp >= s.impressionTime + horizonMs) {
                state.clear();
                return;
            }
            state.update(s);
            return;
        }
        if (s.pending != null) {
            int kept = 0;
            for (SourceEvent c : s.pending) {
                if (c.eventTime + horizonMs <= timestamp) {
                    dead(c, DeadLetterRecord.UNKNOWN_REQUEST, "no impression of request_id " + c.requestId
                            + " within " + horizonMs + " ms of click event_time " + c.eventTime, ctx);
                } else {
                    s.pending[kept++] = c;
                }
            }
            if (kept == 0) {
                state.clear();
                return;
            }
            s.pending = Arrays.copyOf(s.pending, kept);
            state.update(s);
        }
    }

    private void countOutcome(Outcome o) {
        WindowCounts counts = partialFor(o.modelId, o.windowStart, o.modelVersion, o.exploreSeed);
        if (counts == null) {  // after a rescale the impression's window share may be on another subtask
            counts = newPartial(Tuple4.of(o.modelId, o.windowStart, o.modelVersion, o.exploreSeed));
        }
        counts.add(o);
    }

    /** The explore seeds an impression has a row for: each multileaved seed, else its explore_seed. */
    static long[] seedsOf(long exploreSeed, long[] exploreSeeds) {
        return exploreSeeds == null ? new long[] {exploreSeed} : exploreSeeds;
    }

    /**
     * The outcome of the impression for one explore seed (design.md §4). With one explore team every
     * EXPLORE slot counts for it; when multileaving, only the slots of that seed's list count against the
     * CURRENT ones (MGD's per-team credit), the other teams' clicks count for neither.
     */
    private Outcome outcomeOf(RequestState s, long seed) {
        int e = 0;
        int c = 0;
        int n = 0;
        for (int i = 0; i < s.counted.length; i++) {
            if (s.counted[i] != null) {
                n++;
                if (!s.explore[i]) {
                    c++;
                } else if (s.exploreSeeds == null || (s.slotSeeds != null && s.slotSeeds[i] == seed)) {
                    e++;
                }
            }
        }
        int[] clickPartitions = new int[n];
        long[] clickOffsets = new long[n];
        for (int i = 0, j = 0; i < s.counted.length; i++) {
            if (s.counted[i] != null) {
                clickPartitions[j] = s.counted[i].partition;
                clickOffsets[j++] = s.counted[i].offset;
            }
        }
        Outcome o = new Outcome();
        o.modelId = s.modelId;
        o.windowStart = windowStart(s.impressionTime, windowMs);
        o.modelVersion = s.modelVersion;
        o.exploreSeed = seed;
        o.result = e > c ? Outcome.EXPLORE : c > e ? Outcome.CURRENT : e > 0 ? Outcome.TIE : Outcome.NO_CLICK;
        o.impressionPartition = s.impressionPartition;
        o.impressionOffset = s.impressionOffset;
        o.clickPartitions = clickPartitions;
        o.clickOffsets = clickOffsets;
        if (s.pdgdImpression != null && n > 0) {
            o.pdgdImpression = s.pdgdImpression;
            o.pdgdClicked = new int[n];
            for (int i = 0, j = 0; i < s.counted.length; i++) {
                if (s.counted[i] != null) {
                    o.pdgdClicked[j++] = i;
                }
            }
        }
        return o;
    }
}
