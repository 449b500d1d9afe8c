// edgefusion-workbench: the desktop workbench. With a path argument it opens that checkpoint
// (llama2.c: an optional second argument names the tokenizer); without, the bundled default model.
#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>
#include <QMessageBox>
#include <QTimer>
#include <cstdio>

#include "core/hdf5/hdf5_format.h"
#include "views/heatmap_widget.h"
#include "views/main_window.h"

#ifndef EF_DEFAULT_MODEL
#define EF_DEFAULT_MODEL ""
#endif

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("EdgeFusion");
    QApplication::setApplicationName("EdgeFusion Workbench");
    QApplication::setApplicationVersion("0.1.0");
    ef::register_hdf5_format();
    ef::views::apply_workbench_style(app);

    QCommandLineParser parser;
    parser.setApplicationDescription("Inspect and convert edge LLM checkpoints.");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument("checkpoint", "Model file to open (.gguf, .safetensors, .h5, .bin).", "[checkpoint]");
    parser.addPositionalArgument("tokenizer", "llama2.c tokenizer .bin (optional).", "[tokenizer]");
    QCommandLineOption shot("screenshot", "Open the model, wait until its first tensor is inspected, save a PNG of "
                                          "the window and quit (documentation, smoke tests).", "png");
    parser.addOption(shot);
    parser.process(app);
    const QStringList args = parser.positionalArguments();

    ef::views::MainWindow window;
    window.show();
    if (parser.isSet(shot)) {
        const QString png = parser.value(shot);
        QObject::connect(&window, &ef::views::MainWindow::loadFailed, &app, [](const QString& path, const QString& msg) {
            std::fprintf(stderr, "%s: %s\n", qPrintable(path), qPrintable(msg));
            QCoreApplication::exit(1);
        });
        QObject::connect(window.heatmapWidget(), &ef::views::HeatmapWidget::inspectionReady, &app, [&window, png] {
            QTimer::singleShot(300, &window, [&window, png] {
                QCoreApplication::exit(window.grab().save(png) ? 0 : 1);
            });
        });
    }
    // Open after the event loop starts so the window is on screen while the model loads.
    QTimer::singleShot(0, &window, [&window, args] {
        if (!args.isEmpty()) {
            if (args.size() > 1) window.openFile(args[0], args[1]);
            else window.openInteractive(args[0]);
            return;
        }
        const QString fallback = QString::fromUtf8(EF_DEFAULT_MODEL);
        if (fallback.isEmpty() || !QFileInfo::exists(fallback)) {
            auto* box = new QMessageBox(QMessageBox::Warning, "Default model missing",
                                        "The bundled default model was not found.",
                                        QMessageBox::Ok, &window);
            box->setInformativeText(QString("Expected it at:\n%1\n\nRebuild the target ef_default_model, "
                                            "or open a checkpoint with File > Open.")
                                        .arg(fallback.isEmpty() ? "(not configured)" : fallback));
            box->setAttribute(Qt::WA_DeleteOnClose);
            box->open();
            return;
        }
        window.openFile(fallback);
    });
    return app.exec();
}
