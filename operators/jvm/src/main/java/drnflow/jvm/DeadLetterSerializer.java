package drnflow.jvm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Writes dead letters as plain-Avro DeadLetter values keyed by their source topic (design.md §2).
 *
 * <p>A dead letter carries its record's raw bytes, so a record just under the broker's size limit made a
 * dead letter over the producer's limit, and the sink failed the job. Raw key and value are kept up to
 * {@link #MAX_RAW_BYTES} each (their first bytes); the detail says how many bytes the record had, and
 * raw_value_size and raw_value_sha256 describe the whole original value.
 */
public final class DeadLetterSerializer implements KafkaRecordSerializationSchema<DeadLetterRecord> {
    private static final long serialVersionUID = 1L;
    static final int MAX_RAW_BYTES = 256 * 1024;
    static final int MAX_DETAIL_CHARS = 4000;

    private final String topic;
    private final String schemaJson;
    private final String jobName;

    private transient Schema schema;
    private transient GenericDatumWriter<GenericRecord> writer;
    private transient ByteArrayOutputStream buffer;
    private transient BinaryEncoder encoder;

    public DeadLetterSerializer(String topic, String schemaJson, String jobName) {
        this.topic = topic;
        this.schemaJson = schemaJson;
        this.jobName = jobName;
    }

    @Override
    public void open(SerializationSchema.InitializationContext context, KafkaSinkContext sinkContext) {
        schema = new Schema.Parser().parse(schemaJson);
        writer = new GenericDatumWriter<>(schema);
        buffer = new ByteArrayOutputStream(256);
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(DeadLetterRecord d, KafkaSinkContext context, Long timestamp) {
        GenericRecord r = new GenericData.Record(schema);
        r.put("source_topic", d.sourceTopic);
        r.put("source_partition", d.sourcePartition);
        r.put("source_offset", d.sourceOffset);
        String detail = d.detail == null ? "" : d.detail;
        if (detail.length() > MAX_DETAIL_CHARS) {
            detail = detail.substring(0, MAX_DETAIL_CHARS) + "...";
        }
        if (d.rawKey != null && d.rawKey.length > MAX_RAW_BYTES) {
            detail += " (raw_key truncated: first " + MAX_RAW_BYTES + " of " + d.rawKey.length + " bytes kept)";
        }
        if (d.rawValue != null && d.rawValue.length > MAX_RAW_BYTES) {
            detail += " (raw_value truncated: first " + MAX_RAW_BYTES + " of " + d.rawValue.length + " bytes kept)";
        }
        r.put("raw_key", d.rawKey == null ? null : ByteBuffer.wrap(d.rawKey, 0, Math.min(d.rawKey.length, MAX_RAW_BYTES)));
        r.put("raw_value", d.rawValue == null ? null
                : ByteBuffer.wrap(d.rawValue, 0, Math.min(d.rawValue.length, MAX_RAW_BYTES)));
        r.put("reason", d.reason);
        r.put("detail", detail);
        r.put("job", jobName);
        r.put("created_at", null);
        r.put("raw_value_size", d.rawValue == null ? null : (long) d.rawValue.length);
        r.put("raw_value_sha256", d.rawValue == null ? "" : sha256Hex(d.rawValue));
        buffer.reset();
        encoder = EncoderFactory.get().binaryEncoder(buffer, encoder);
        try {
            writer.write(r, encoder);
            encoder.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        byte[] key = d.sourceTopic.getBytes(StandardCharsets.UTF_8);
        return new ProducerRecord<>(topic, null, null, key, buffer.toByteArray());
    }

    static String sha256Hex(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
    }
}
