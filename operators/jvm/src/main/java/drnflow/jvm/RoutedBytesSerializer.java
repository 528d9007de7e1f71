package drnflow.jvm;

import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.flink.types.Row;

/** Writes rows (topic, key bytes, value bytes) already encoded by the Python per-window step. */
public final class RoutedBytesSerializer implements KafkaRecordSerializationSchema<Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public ProducerRecord<byte[], byte[]> serialize(Row row, KafkaSinkContext context, Long timestamp) {
        String topic = (String) row.getField(0);
        byte[] key = (byte[]) row.getField(1);
        byte[] value = (byte[]) row.getField(2);
        return new ProducerRecord<>(topic, null, null, key, value);
    }
}
