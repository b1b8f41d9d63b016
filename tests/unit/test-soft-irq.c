/*
 * The software interrupt controller of the qtest accelerator: MSI routes,
 * irqfds delivered from the main loop, ioeventfds matched by KVM's rules.
 */
#include <sys/eventfd.h>
#include <unistd.h>
#include <godwit/soft-irq.h>

typedef struct {
    int n;
    uint64_t addr;
    uint32_t data;
} Delivered;

static void
record(gpointer opaque, uint64_t addr, uint32_t data)
{
    Delivered *d = opaque;
    d->n++;
    d->addr = addr;
    d->data = data;
}

static void
drain_main_context(void)
{
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

static uint64_t
eventfd_value(int fd)
{
    uint64_t v = 0;
    return read(fd, &v, sizeof(v)) == sizeof(v) ? v : 0;
}

static void
test_irqfd_delivers_the_routed_msi(void)
{
    GMutex lock;
    Delivered d = {0};
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const uint64_t one = 1;

    g_mutex_init(&lock);
    g_autoptr(GwSoftIrq) s = gw_soft_irq_new(&lock, record, &d);
    const GwIrqChip *chip = gw_soft_irq_chip(s);
    int gsi = chip->ops->msi_route_add(chip->ctx, 0x1000, 0x41, NULL);

    g_assert_cmpint(gsi, >=, 24);
    g_assert_true(chip->ops->irqfd(chip->ctx, fd, gsi, true, NULL));
    g_assert_false(chip->ops->irqfd(chip->ctx, fd, gsi, true, NULL));
    g_assert_cmpint(write(fd, &one, 8), ==, 8);
    drain_main_context();
    g_assert_cmpint(d.n, ==, 1);
    g_assert_cmphex(d.addr, ==, 0x1000);
    g_assert_cmphex(d.data, ==, 0x41);
    g_assert_cmpuint(eventfd_value(fd), ==, 0); /* consumed */

    /* The vector moves: the next interrupt follows the route. */
    g_assert_true(chip->ops->msi_route_set(chip->ctx, gsi, 0x2000, 7, NULL));
    g_assert_cmpint(write(fd, &one, 8), ==, 8);
    drain_main_context();
    g_assert_cmpint(d.n, ==, 2);
    g_assert_cmphex(d.addr, ==, 0x2000);

    /* Unbound: the eventfd is left alone for its owner. */
    g_assert_true(chip->ops->irqfd(chip->ctx, fd, gsi, false, NULL));
    g_assert_cmpint(write(fd, &one, 8), ==, 8);
    drain_main_context();
    g_assert_cmpint(d.n, ==, 2);
    g_assert_cmpuint(eventfd_value(fd), ==, 1);
    g_assert_cmpuint(gw_soft_irq_msi_count(s), ==, 2);
    chip->ops->msi_route_del(chip->ctx, gsi);
    g_assert_cmpint(chip->ops->msi_route_add(chip->ctx, 0, 0, NULL), ==, gsi);
    close(fd);
    g_mutex_clear(&lock);
}

static void
test_signal_msi_is_immediate(void)
{
    GMutex lock;
    Delivered d = {0};

    g_mutex_init(&lock);
    g_autoptr(GwSoftIrq) s = gw_soft_irq_new(&lock, record, &d);
    const GwIrqChip *chip = gw_soft_irq_chip(s);
    chip->ops->signal_msi(chip->ctx, 0xfee00000, 0x30);
    g_assert_cmpint(d.n, ==, 1);
    g_assert_cmphex(d.addr, ==, 0xfee00000);
    g_assert_cmphex(d.data, ==, 0x30);
    g_mutex_clear(&lock);
}

static void
test_ioeventfd_matches_like_kvm(void)
{
    GMutex lock;
    Delivered d = {0};
    int any = eventfd(0, EFD_NONBLOCK), word = eventfd(0, EFD_NONBLOCK);

    g_mutex_init(&lock);
    g_autoptr(GwSoftIrq) s = gw_soft_irq_new(&lock, record, &d);
    const GwIrqChip *chip = gw_soft_irq_chip(s);
    g_assert_true(chip->ops->ioeventfd(chip->ctx, 0x3000, 0, any, true, NULL));
    g_assert_true(chip->ops->ioeventfd(chip->ctx, 0x3004, 4, word, true, NULL));
    g_assert_false(
        chip->ops->ioeventfd(chip->ctx, 0x3004, 4, word, true, NULL));

    g_assert_true(gw_soft_irq_match_ioeventfd(s, 0x3000, 2));
    g_assert_true(gw_soft_irq_match_ioeventfd(s, 0x3000, 4));
    g_assert_cmpuint(eventfd_value(any), ==, 2);
    g_assert_false(gw_soft_irq_match_ioeventfd(s, 0x3004, 2)); /* width */
    g_assert_false(gw_soft_irq_match_ioeventfd(s, 0x3002, 4)); /* address */
    g_assert_true(gw_soft_irq_match_ioeventfd(s, 0x3004, 4));
    g_assert_cmpuint(eventfd_value(word), ==, 1);
    g_assert_cmpuint(gw_soft_irq_ioeventfd_count(s), ==, 3); /* matches */

    g_assert_true(
        chip->ops->ioeventfd(chip->ctx, 0x3004, 4, word, false, NULL));
    g_assert_false(gw_soft_irq_match_ioeventfd(s, 0x3004, 4));
    g_assert_false(
        chip->ops->ioeventfd(chip->ctx, 0x3004, 4, word, false, NULL));
    close(any);
    close(word);
    g_mutex_clear(&lock);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/soft-irq/irqfd-delivers-the-routed-msi",
                    test_irqfd_delivers_the_routed_msi);
    g_test_add_func("/soft-irq/signal-msi-is-immediate",
                    test_signal_msi_is_immediate);
    g_test_add_func("/soft-irq/ioeventfd-matches-like-kvm",
                    test_ioeventfd_matches_like_kvm);
    return g_test_run();
}
